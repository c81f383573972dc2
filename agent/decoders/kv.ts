// kv format (SPEC.md 2): `temperature=21.5 humidity=40.2 [ts=1700000000000]`, pairs separated by
// whitespace (a comma between pairs is tolerated). The device is the source's `device`; a
// `device=<id>` pair overrides it (several sensors sharing one line). A duplicated metric is `syntax`.
import type { Reading } from '../../shared/model.ts';
import {
  checkName,
  DEFAULT_MAX_FRAME_BYTES,
  fail,
  parseNumberText,
  parseTimestamp,
  toText,
} from './common.ts';
import type { DecodeContext, Decoder, DecoderDescriptor } from './decoder.ts';

export class KvDecoder implements Decoder {
  readonly format = 'kv' as const;
  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, this.maxFrameBytes).trim();
    if (text === '') fail('empty', 'empty frame');
    let deviceField: string | undefined;
    let tsField: string | undefined;
    const pairs = new Map<string, string>();
    for (const tok of text.split(/[\s,]+/)) {
      if (tok === '') continue;
      const eq = tok.indexOf('=');
      if (eq <= 0) fail('syntax', 'expected key=value');
      const k = tok.slice(0, eq);
      const v = tok.slice(eq + 1);
      if (k === 'device') deviceField = v;
      else if (k === 'ts') tsField = v;
      else if (pairs.has(k)) fail('syntax', 'duplicate key');
      else pairs.set(k, v);
    }
    const device = checkName(deviceField || ctx.device, 'device');
    if (pairs.size === 0) fail('no_value', 'no metric=value pair');
    const ts = tsField === undefined ? ctx.arrivalTs : parseTimestamp(tsField);
    const out: Reading[] = [];
    for (const [k, v] of pairs) {
      const r: Reading = { device, metric: checkName(k, 'metric'), value: parseNumberText(v, k), ts };
      if (tsField === undefined) r.arrivalTime = true;
      out.push(r);
    }
    return out;
  }
}

export const kvFormat: DecoderDescriptor = {
  type: 'kv',
  summary: '`temperature=21.5 humidity=40.2 [ts=...]`',
  capabilities: { needsTopicMetric: false },
  create: (o) => new KvDecoder(o.maxFrameBytes),
};
