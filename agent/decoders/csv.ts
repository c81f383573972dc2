// csv format (SPEC.md 2): `device,metric,value[,ts]`, one line per frame. No quoting (sensor firmware
// does not produce it); fields are trimmed. An empty device field falls back to the source's `device`.
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

export class CsvDecoder implements Decoder {
  readonly format = 'csv' as const;
  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, this.maxFrameBytes).trim();
    if (text === '') fail('empty', 'empty frame');
    const f = text.split(',').map((s) => s.trim());
    if (f.length < 3 || f.length > 4) fail('syntax', `csv frame needs 3 or 4 fields, got ${f.length}`);
    const device = checkName(f[0] || ctx.device, 'device');
    const metric = checkName(f[1] || ctx.metric, 'metric');
    const value = parseNumberText(f[2]!);
    const tsField = f[3];
    if (tsField === undefined || tsField === '')
      return [{ device, metric, value, ts: ctx.arrivalTs, arrivalTime: true }];
    return [{ device, metric, value, ts: parseTimestamp(tsField) }];
  }
}

export const csvFormat: DecoderDescriptor = {
  type: 'csv',
  summary: '`device,metric,value[,ts]`, one line per frame',
  capabilities: { needsTopicMetric: false },
  create: (o) => new CsvDecoder(o.maxFrameBytes),
};
