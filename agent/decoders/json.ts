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
import {
  checkName,
  DEFAULT_MAX_FRAME_BYTES,
  exactDecimal,
  fail,
  parseTimestamp,
  requireNumber,
  toText,
} from './common.ts';
import type { DecodeContext, Decoder, DecoderDescriptor } from './decoder.ts';

const RESERVED = new Set(['device', 'ts', 'metric', 'value']);

export class JsonDecoder implements Decoder {
  readonly format = 'json' as const;
  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Names the fast path already validated (checkName), reused so no string is cut for them; see below. */
  private lastDevice: string | null = null;
  private readonly metrics: string[] = [];

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, this.maxFrameBytes);
    const fast = text.startsWith(VALUE_FIRST_OPEN) ? decodeTopicForm(text, ctx) : this.decodeCanonical(text);
    if (fast !== null) return [fast];
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

  /**
   * The single form exactly as firmware writes it, `{"device":"…","metric":"…","value":N,"ts":N}` with no
   * whitespace and no escape in the names, read without JSON.parse; null for anything else (the general
   * path then decides, so no frame is refused here). Issue 14: JSON.parse built an object per frame (its
   * keys looked up, its two names new strings each time) only for the decoder to read four fields from
   * it; this reads them in place and reuses the string of a name seen before. `bench/pipeline.ts`, the
   * decoder alone: 1.30–1.52M → 2.52–2.91M frames per CPU-second (`JSON.parse` alone: 1.66–1.85M).
   * Same readings: the four keys in this order, once each, leave nothing for JSON.parse to decide
   * differently; numbers are JSON's grammar, and their value is the one JSON.parse gives (readJsonNumber).
   */
  private decodeCanonical(t: string): Reading | null {
    if (!t.startsWith(DEVICE_OPEN)) return null;
    const d0 = DEVICE_OPEN.length;
    const d1 = plainStringEnd(t, d0);
    if (d1 < 0 || !t.startsWith(METRIC_OPEN, d1)) return null;
    const m0 = d1 + METRIC_OPEN.length;
    const m1 = plainStringEnd(t, m0);
    if (m1 < 0 || !t.startsWith(VALUE_OPEN, m1) || !readValueAndTs(t, m1 + VALUE_OPEN.length)) return null;
    const value = numberRead[0]!;
    const rawTs = numberRead[1]!;
    // The frame is JSON of that shape: its fields are checked in the general path's order, so a bad one
    // gives the same reason there and here.
    let device = this.lastDevice;
    if (device === null || d1 - d0 !== device.length || !t.startsWith(device, d0)) {
      device = checkName(t.slice(d0, d1), 'device');
      this.lastDevice = device;
    }
    const ts = parseTimestamp(rawTs);
    const metric = this.metricAt(t, m0, m1);
    return { device, metric, value: requireNumber(value), ts };
  }

  /** The metric name at t[i, end): a string seen before when it is one of the last few (a gateway's
   * devices send the same few metrics), else cut, validated and remembered. */
  private metricAt(t: string, i: number, end: number): string {
    const known = this.metrics;
    const len = end - i;
    for (let k = 0; k < known.length; k++) {
      const m = known[k]!;
      if (m.length === len && t.startsWith(m, i)) return m;
    }
    const m = checkName(t.slice(i, end), 'metric');
    if (known.length >= KNOWN_METRICS) known.pop();
    known.unshift(m);
    return m;
  }
}

/**
 * `{"value":N,"ts":N}` exactly, device and metric from the context (an MQTT topic: `plant/{device}/{metric}`),
 * read without JSON.parse; null for anything else (the general path decides). Issue 14, second pass: the
 * MQTT firmware form sent every frame of bench/nodered.ts through JSON.parse (decodeCanonical wants the
 * names in the frame): ~17 % of the agent's busy CPU at QoS 0 in a fake-broker profile. Checks in the
 * general path's order (device, ts, metric, value), so a bad frame gives the same reason.
 */
function decodeTopicForm(t: string, ctx: DecodeContext): Reading | null {
  if (!readValueAndTs(t, VALUE_FIRST_OPEN.length)) return null;
  const value = numberRead[0]!;
  const rawTs = numberRead[1]!;
  const device = checkName(ctx.device, 'device');
  const ts = parseTimestamp(rawTs);
  const metric = checkName(ctx.metric, 'metric');
  return { device, metric, value: requireNumber(value), ts };
}

const VALUE_FIRST_OPEN = '{"value":';
const DEVICE_OPEN = '{"device":"';
const METRIC_OPEN = '","metric":"';
const VALUE_OPEN = '","value":';
const TS_OPEN = ',"ts":';
/** Metric names the fast path compares a frame's against before cutting a new string. */
const KNOWN_METRICS = 8;

/** Index of the closing quote of a JSON string whose text starts at `i` and holds no escape and no
 * control character (JSON.parse would refuse those raw); -1 otherwise, or when it does not end. */
function plainStringEnd(t: string, i: number): number {
  for (let c = t.charCodeAt(i); ; c = t.charCodeAt(++i)) {
    if (c === 0x22) return i;
    // NaN past the end fails `c >= 0x20`
    if (c === 0x5c || !(c >= 0x20)) return -1;
  }
}

/**
 * Where readJsonNumber puts the numbers it reads (readValueAndTs: the value in 0, the timestamp in 1). A
 * typed array: a double stored into a module `let` is a new heap number each time (issue 14: that store
 * was 5 % of decode + one window).
 */
const numberRead = new Float64Array(2);

/**
 * The tail both fast forms end with, `N,"ts":N}` from `i` to the end of `t`: true with the value in
 * numberRead[0] and the timestamp in numberRead[1], false for anything else.
 */
function readValueAndTs(t: string, i: number): boolean {
  const end = readJsonNumber(t, i, 0);
  if (end < 0 || !t.startsWith(TS_OPEN, end)) return false;
  const last = readJsonNumber(t, end + TS_OPEN.length, 1);
  return last === t.length - 1 && t.charCodeAt(last) === 0x7d /* } */;
}

/**
 * Reads a JSON number (RFC 8259 grammar) starting at `i` into `numberRead[slot]`; returns the index after it,
 * or -1 when there is none. Up to 15 significant digits and no exponent, the value is digits / 10^k in
 * doubles: both exact, one correctly rounded division, so the nearest double to the decimal, which is
 * what JSON.parse and Number() return (Clinger's fast path). Anything else goes through Number().
 */
function readJsonNumber(t: string, i: number, slot: 0 | 1): number {
  const start = i;
  let c = t.charCodeAt(i);
  const negative = c === 0x2d;
  if (negative) c = t.charCodeAt(++i);
  let digits = 0;
  let mantissa = 0;
  if (c === 0x30) c = t.charCodeAt(++i);
  else if (c >= 0x31 && c <= 0x39) {
    do {
      mantissa = mantissa * 10 + (c - 0x30);
      digits++;
      c = t.charCodeAt(++i);
    } while (c >= 0x30 && c <= 0x39);
  } else return -1;
  let decimals = 0;
  if (c === 0x2e) {
    c = t.charCodeAt(++i);
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    do {
      mantissa = mantissa * 10 + (c - 0x30);
      decimals++;
      c = t.charCodeAt(++i);
    } while (c >= 0x30 && c <= 0x39);
  }
  let exponent = false;
  if (c === 0x65 || c === 0x45) {
    exponent = true;
    c = t.charCodeAt(++i);
    if (c === 0x2b || c === 0x2d) c = t.charCodeAt(++i);
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    do c = t.charCodeAt(++i);
    while (c >= 0x30 && c <= 0x39);
  }
  // Leading zeros after the point count as digits too (0.001: mantissa 1, 3 decimals): both bounds hold.
  numberRead[slot] =
    exponent || digits + decimals > 15
      ? Number(t.slice(start, i))
      : exactDecimal(mantissa, decimals, negative);
  return i;
}

export const jsonFormat: DecoderDescriptor = {
  type: 'json',
  summary: 'one JSON object per frame: a reading, or a device with several metrics',
  capabilities: { needsTopicMetric: false },
  create: (o) => new JsonDecoder(o.maxFrameBytes),
};
