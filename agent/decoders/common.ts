// Helpers shared by the decoders: text, numbers, timestamps and names, each failing with a FrameError
// whose `reason` is one of the FRAME_REASONS below (low cardinality: it becomes a metric label).
import { FrameError } from './decoder.ts';

/** Every reason a decoder can give (edgeflow_agent_bad_frames_total{reason}). */
export const FRAME_REASONS = [
  'empty', // nothing but whitespace
  'too_long', // frame larger than maxFrameBytes (sources also use it for overlong serial lines)
  'encoding', // not valid UTF-8
  'syntax', // not JSON / not csv / not key=value / not a SenML pack
  'no_device', // no device in the frame, the topic or the source's `device`
  'no_metric', // no metric in the frame or the topic
  'no_value', // nothing to read a value from
  'not_a_number', // value is not a finite number (NaN, Infinity, text, boolean, SenML vs/vb/vd)
  'bad_name', // device/metric too long, control characters, or a reserved name
  'bad_timestamp', // unparseable, or outside [1970-01-01, 2100-01-01) (the floor is the runtime's limits.minEventTime)
  'unsupported', // SenML: a bver above 10 or a must-understand field (name ending in `_`) (RFC 8428 4.4, 12.2)
] as const;
export type FrameReason = (typeof FRAME_REASONS)[number];

export function fail(reason: FrameReason, message: string): never {
  throw new FrameError(reason, message);
}

/** Longest device or metric name, in UTF-16 units (shared/model.ts allows 256). */
export const MAX_NAME_LENGTH = 256;
/** Default largest frame a decoder accepts, bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/**
 * Timestamps outside this range are `bad_timestamp` (not a time at all). The floor for *plausible* times
 * is one setting, `limits.minEventTime` [2000-01-01], applied by the runtime to every format
 * (`timestamp_too_old`; issue 12 item 5: a second, undocumented floor here refused the RFC's examples).
 */
export const MIN_TS = 0;
export const MAX_TS = Date.UTC(2100, 0, 1);
/** Numeric timestamps below this are epoch seconds, at or above it epoch milliseconds (1e11 s is year 5138, 1e11 ms is 1973). */
export const SECONDS_BELOW = 1e11;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function toText(payload: Buffer | string, maxBytes: number): string {
  if (typeof payload === 'string') {
    if (payload.length > maxBytes) fail('too_long', `frame longer than ${maxBytes} bytes`);
    return payload;
  }
  if (payload.length > maxBytes) fail('too_long', `frame longer than ${maxBytes} bytes`);
  try {
    return utf8.decode(payload);
  } catch {
    return fail('encoding', 'frame is not valid UTF-8');
  }
}

// Plain decimal notation only: Number() would also take "0x1F", "Infinity", "" and " ".
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number written as text (csv, kv, number formats). */
export function parseNumberText(text: string, what = 'value'): number {
  const quick = plainDecimal(text);
  if (!Number.isNaN(quick)) return quick;
  const t = text.trim();
  if (t === '') fail('no_value', `${what} is empty`);
  if (!NUMBER_RE.test(t)) fail('not_a_number', `${what} is not a number`);
  const n = Number(t);
  if (!Number.isFinite(n)) fail('not_a_number', `${what} is not finite`);
  return n;
}

/** 10^k for k <= 22: exact doubles (the largest power of ten that is one). */
const EXACT_POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * The value of `text` when all of it is a number in plain decimal notation without exponent and with at
 * most 15 digits (`21.5`, `-3`, `+0.25`, `7.`, `.5`): what sensors send. NaN otherwise (then the caller
 * takes the general path: whitespace, exponents, long numbers, refusals). Issue 14: the trim, the
 * NUMBER_RE test and Number() cost 14 % of decode + one window for number frames. The value is the one
 * Number() gives: digits and 10^k are exact doubles, so their quotient is the correctly rounded decimal
 * (Clinger's fast path).
 */
export function plainDecimal(text: string): number {
  const n = text.length;
  let i = 0;
  let c = text.charCodeAt(0);
  const negative = c === 0x2d;
  if (negative || c === 0x2b) c = text.charCodeAt(++i);
  let mantissa = 0;
  let digits = 0;
  while (c >= 0x30 && c <= 0x39) {
    mantissa = mantissa * 10 + (c - 0x30);
    digits++;
    c = text.charCodeAt(++i);
  }
  let decimals = 0;
  if (c === 0x2e) {
    c = text.charCodeAt(++i);
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      decimals++;
      c = text.charCodeAt(++i);
    }
  }
  if (i !== n || digits + decimals === 0 || digits + decimals > 15) return Number.NaN;
  return exactDecimal(mantissa, decimals, negative);
}

/**
 * The double nearest to ±mantissa / 10^decimals, for a mantissa of at most 15 digits: both are exact
 * doubles, so one division rounds correctly (Clinger's fast path), the value Number() and JSON.parse give.
 * The fast number readers of the text formats (plainDecimal) and of json (json.ts) end here.
 */
export function exactDecimal(mantissa: number, decimals: number, negative: boolean): number {
  const v = decimals === 0 ? mantissa : mantissa / EXACT_POW10[decimals]!;
  return negative ? -v : v;
}

/** A JSON value that must be a finite number. */
export function requireNumber(v: unknown, what = 'value'): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail('not_a_number', `${what} is not a finite number`);
  return v;
}

// ISO 8601 with an explicit offset: a local time without zone would depend on the gateway's TZ.
const ISO_RE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Event time from a frame: a number (epoch ms, or epoch seconds when < 1e11; fractions allowed), a
 * numeric string with the same rule, or an ISO 8601 string with `Z` or an offset. Returns epoch ms.
 */
export function parseTimestamp(v: unknown): number {
  let ms: number;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail('bad_timestamp', 'ts is not finite');
    ms = v < SECONDS_BELOW ? v * 1000 : v;
  } else if (typeof v === 'string') {
    const t = v.trim();
    if (NUMBER_RE.test(t)) {
      const n = Number(t);
      ms = n < SECONDS_BELOW ? n * 1000 : n;
    } else if (t.length <= 40 && ISO_RE.test(t)) {
      ms = Date.parse(t.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
    } else {
      return fail('bad_timestamp', 'ts is neither epoch nor ISO 8601 with a zone');
    }
  } else {
    return fail('bad_timestamp', 'ts must be a number or a string');
  }
  if (!Number.isFinite(ms) || ms < MIN_TS || ms >= MAX_TS)
    fail('bad_timestamp', 'ts out of range [1970, 2100)');
  return Math.round(ms);
}

// C0/C1 control characters (incl. newline, NUL) have no place in an identifier that ends up in topics,
// keys and Influx tags.
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

// Names already found valid: validity depends on the string alone, and a gateway sees the same few
// devices and metrics over and over, so a known one costs a set lookup instead of a regex, a trim and
// the length checks (issue 14: 5 % of decode + one window). Bounded: cleared when full.
const KNOWN_NAMES_MAX = 10_000;
const knownNames = new Set<string>();

/** Validates a device or metric name taken from a frame or a topic. */
export function checkName(v: unknown, what: 'device' | 'metric' | 'unit'): string {
  if (typeof v === 'string' && knownNames.has(v)) return v;
  if (v === undefined || v === null || v === '')
    fail(what === 'device' ? 'no_device' : 'no_metric', `no ${what}`);
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v))
    s = String(v); // numeric sensor ids
  else return fail('bad_name', `${what} must be a string`);
  if (s.trim() === '') fail(what === 'device' ? 'no_device' : 'no_metric', `${what} is blank`);
  if (s.length > MAX_NAME_LENGTH) fail('bad_name', `${what} longer than ${MAX_NAME_LENGTH}`);
  if (CONTROL_RE.test(s)) fail('bad_name', `${what} contains control characters`);
  if (s === '__proto__') fail('bad_name', `${what} is a reserved name`);
  if (typeof v === 'string') {
    if (knownNames.size >= KNOWN_NAMES_MAX) knownNames.clear();
    knownNames.add(s);
  }
  return s;
}
