// Frame encoders: the exact inverse of the agent's decoders (SPEC.md section 2, "Sensor frame formats").
// One frame is one line on serial (the newline is added by the output) or one MQTT message.
//
//   json    {"device":"s1","metric":"temperature","value":21.5,"ts":1700000000000}
//           grouped: {"device":"s1","ts":1700000000000,"temperature":21.5,"humidity":40.2}
//   csv     s1,temperature,21.5,1700000000000
//   kv      temperature=21.5 humidity=40.2 ts=1700000000000      (no device: the source's `device`)
//   senml   [{"bn":"s1/","bt":1700000000,"n":"temperature","u":"Cel","v":21.5}, {"n":"humidity",...}]
//   number  21.5                                                   (device and metric from the topic)
//
// SenML (RFC 8428): the record name is bn + n, so device and metric are split at the last "/" of
// "s1/temperature"; times are seconds since the epoch (section 4.5.3), here with millisecond
// decimals (1700000000.123), which a decoder turns back into ms with Math.round(bt * 1000).
import { METRIC_INFO, type Metric } from './signals.ts';

export const FORMATS = ['json', 'csv', 'kv', 'senml', 'number'] as const;
export type Format = (typeof FORMATS)[number];

/** Formats that can carry several metrics of one device in one frame (with --group). */
export const GROUPABLE: ReadonlySet<Format> = new Set<Format>(['json', 'kv', 'senml']);

/** What one frame says: one device, one timestamp (epoch ms), one or more metric values. */
export interface FrameContent {
  device: string;
  ts: number;
  values: ReadonlyArray<readonly [Metric, number]>;
}

function one(c: FrameContent, format: Format): readonly [Metric, number] {
  if (c.values.length !== 1)
    throw new RangeError(`${format} frames carry exactly one reading, got ${c.values.length}`);
  return c.values[0]!;
}

export function encodeJson(c: FrameContent): string {
  if (c.values.length === 1) {
    const [metric, value] = c.values[0]!;
    return JSON.stringify({ device: c.device, metric, value, ts: c.ts });
  }
  const o: Record<string, string | number> = { device: c.device, ts: c.ts };
  for (const [metric, value] of c.values) o[metric] = value;
  return JSON.stringify(o);
}

export function encodeCsv(c: FrameContent): string {
  const [metric, value] = one(c, 'csv');
  return `${c.device},${metric},${value},${c.ts}`;
}

export function encodeKv(c: FrameContent): string {
  return [...c.values.map(([m, v]) => `${m}=${v}`), `ts=${c.ts}`].join(' ');
}

export function encodeSenml(c: FrameContent): string {
  const records = c.values.map(([metric, value], i) => {
    const r: Record<string, string | number> = i === 0 ? { bn: `${c.device}/`, bt: c.ts / 1000 } : {};
    r.n = metric;
    r.u = METRIC_INFO[metric].unit;
    r.v = value;
    return r;
  });
  return JSON.stringify(records);
}

export function encodeNumber(c: FrameContent): string {
  return String(one(c, 'number')[1]);
}

const ENCODERS: Record<Format, (c: FrameContent) => string> = {
  json: encodeJson,
  csv: encodeCsv,
  kv: encodeKv,
  senml: encodeSenml,
  number: encodeNumber,
};

export function encode(format: Format, c: FrameContent): string {
  if (c.values.length === 0) throw new RangeError('a frame needs at least one value');
  return ENCODERS[format](c);
}
