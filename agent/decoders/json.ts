// json format (SPEC.md 2): one object per frame, either one reading
//   {"device":"s1","metric":"temperature","value":21.5,"ts":1700000000000}
// or several metrics of one device at one time
//   {"device":"s1","ts":"2023-11-14T22:13:20Z","temperature":21.5,"humidity":40.2}
// Rules: `device` falls back to the context (source `device` or topic); in the single form `metric`
// falls back to the topic's metric. In the multi form every other numeric field is a metric and
// non-numeric fields (strings, booleans, null, objects: firmware versions, status text) are skipped;
// a multi-form frame without any numeric field is `no_value`. `ts`: see common.ts parseTimestamp;
// absent → arrival time with `arrivalTime: true`.
import type { Reading } from '../../shared/model.ts';
import { checkName, DEFAULT_MAX_FRAME_BYTES, fail, parseTimestamp, requireNumber, toText } from './common.ts';
import type { DecodeContext, Decoder, DecoderDescriptor } from './decoder.ts';

const RESERVED = new Set(['device', 'ts', 'metric', 'value']);

export class JsonDecoder implements Decoder {
  readonly format = 'json' as const;
  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, this.maxFrameBytes);
    if (text.trim() === '') fail('empty', 'empty frame');
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      return fail('syntax', 'not valid JSON');
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      fail('syntax', 'JSON frame must be an object');
    const o = obj as Record<string, unknown>;
    const device = checkName(o.device ?? ctx.device, 'device');
    const hasTs = o.ts !== undefined && o.ts !== null;
    const ts = hasTs ? parseTimestamp(o.ts) : ctx.arrivalTs;
    // Hot path (issue 14): no per-frame closure or object spread; readings are built in one shape.
    if ('value' in o || 'metric' in o) {
      const metric = checkName(o.metric ?? ctx.metric, 'metric');
      if (o.value === undefined || o.value === null) fail('no_value', 'no value');
      const value = requireNumber(o.value);
      return [hasTs ? { device, metric, value, ts } : { device, metric, value, ts, arrivalTime: true }];
    }
    const out: Reading[] = [];
    for (const k in o) {
      const v = o[k];
      if (typeof v !== 'number' || RESERVED.has(k) || !Object.hasOwn(o, k)) continue;
      const metric = checkName(k, 'metric');
      const value = requireNumber(v, k);
      out.push(hasTs ? { device, metric, value, ts } : { device, metric, value, ts, arrivalTime: true });
    }
    if (out.length === 0) fail('no_value', 'no numeric field');
    return out;
  }
}

export const jsonFormat: DecoderDescriptor = {
  type: 'json',
  summary: 'one JSON object per frame: a reading, or a device with several metrics',
  capabilities: { needsTopicMetric: false },
  create: (o) => new JsonDecoder(o.maxFrameBytes),
};
