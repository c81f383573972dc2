// senml format: an RFC 8428 JSON pack, e.g.
//   [{"bn":"urn:dev:mac:0024befffe804ff1:","bt":1700000000,"bu":"Cel","n":"temperature","v":21.5},
//    {"n":"humidity","u":"%RH","v":40.2,"t":1}]
// Resolution (RFC 8428 4.6): base fields (bn, bt, bu, bv) apply to the record that carries them and to
// every later record until redefined; name = bn + n; value = bv + v; time = bt + t (seconds, fractions
// allowed). A resolved time below 2^28 is relative to "now" (RFC 8428 4.5.3): now is the frame's arrival
// time; a pack with neither bt nor t anywhere is stamped `arrivalTime: true`.
// Records whose value is a string (vs), boolean (vb) or data (vd), or that carry only a sum (s), give no
// reading and are skipped; a pack that yields no reading at all is `not_a_number` if it had such records,
// else `no_value`. The unit (u, else the base unit bu) is kept on the reading; summaries carry it as tag
// `unit` (issue 12 item 5). A pack is refused whole (`unsupported`) when a record has a bver above 10
// (RFC 8428 4.4: "a version number higher than it understands") or a field whose name ends in `_`
// (RFC 8428 4.4/12.2: must-understand fields; we understand none). Times are only checked to be times
// here ([1970, 2100)); how old a reading may be is the runtime's one floor, `limits.minEventTime`.
//
// Device/metric split (our rule, RFC 8428 has none):
//   1. bn and n both non-empty: device = bn without trailing separators (":" "/" "."), metric = n.
//      ("urn:dev:mac:0024befffe804ff1:" + "temperature" → device "urn:dev:mac:0024befffe804ff1")
//   2. otherwise the resolved name is split at its last ":" or "/": "s1/temperature" → s1, temperature;
//      "urn:dev:ow:10e2073a01080063:temp" → "urn:dev:ow:10e2073a01080063", "temp".
//   3. a name without separator is the metric; the device is the source's `device` (or topic's).
//   4. an empty resolved name takes the topic's metric (pattern "sensors/{device}/{metric}").
import type { Reading } from '../../shared/model.ts';
import { checkName, DEFAULT_MAX_FRAME_BYTES, fail, MAX_TS, MIN_TS, toText } from './common.ts';
import type { DecodeContext, Decoder, DecoderDescriptor } from './decoder.ts';

/** RFC 8428 4.5.3: times below 2^28 s are relative to now. */
const RELATIVE_BELOW = 2 ** 28;
/** RFC 8428 4.4: the version this decoder implements; packs with a higher bver are refused. */
const SENML_VERSION = 10;

/** Refuses the pack when a record needs what this decoder does not implement. */
function checkUnderstood(r: Record<string, unknown>): void {
  for (const k of Object.keys(r))
    if (k.endsWith('_'))
      fail('unsupported', `SenML must-understand field "${k.slice(0, 32)}" is not supported`);
  const bver = r.bver;
  if (bver === undefined) return;
  if (typeof bver !== 'number' || !Number.isInteger(bver)) fail('syntax', 'SenML bver must be an integer');
  if (bver > SENML_VERSION) fail('unsupported', `SenML bver ${bver} is above ${SENML_VERSION}`);
}

function optNumber(r: Record<string, unknown>, k: string): number | undefined {
  const v = r[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    fail(k === 'v' || k === 'bv' ? 'not_a_number' : 'syntax', `SenML ${k} must be a number`);
  return v;
}

function optString(r: Record<string, unknown>, k: string): string | undefined {
  const v = r[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail('syntax', `SenML ${k} must be a string`);
  return v;
}

function splitName(bn: string, n: string, ctx: DecodeContext): { device: unknown; metric: unknown } {
  if (bn !== '' && n !== '') return { device: bn.replace(/[:/.]+$/, ''), metric: n };
  const full = bn + n;
  if (full === '') return { device: ctx.device, metric: ctx.metric };
  const i = Math.max(full.lastIndexOf(':'), full.lastIndexOf('/'));
  if (i > 0 && i < full.length - 1) return { device: full.slice(0, i), metric: full.slice(i + 1) };
  if (i === full.length - 1) return { device: full.replace(/[:/.]+$/, ''), metric: ctx.metric };
  return { device: ctx.device, metric: full };
}

export class SenmlDecoder implements Decoder {
  readonly format = 'senml' as const;
  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, this.maxFrameBytes);
    if (text.trim() === '') fail('empty', 'empty frame');
    let pack: unknown;
    try {
      pack = JSON.parse(text);
    } catch {
      return fail('syntax', 'not valid JSON');
    }
    // A single record object is not a pack, but some firmware sends one; accept it.
    if (typeof pack === 'object' && pack !== null && !Array.isArray(pack)) pack = [pack];
    if (!Array.isArray(pack) || pack.length === 0) fail('syntax', 'SenML pack must be a non-empty array');

    let bn = '';
    let bu: string | undefined;
    let bt = 0;
    let bv = 0;
    let timed = false;
    let skipped = 0;
    const out: Reading[] = [];
    for (const rec of pack) {
      if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
        fail('syntax', 'SenML record must be an object');
      const r = rec as Record<string, unknown>;
      checkUnderstood(r);
      bn = optString(r, 'bn') ?? bn;
      const btv = optNumber(r, 'bt');
      if (btv !== undefined) {
        bt = btv;
        timed = true;
      }
      bv = optNumber(r, 'bv') ?? bv;
      bu = optString(r, 'bu') ?? bu;
      const u = optString(r, 'u') ?? bu;
      const n = optString(r, 'n') ?? '';
      const t = optNumber(r, 't');
      if (t !== undefined) timed = true;
      const v = optNumber(r, 'v');
      if (v === undefined) {
        if ('vs' in r || 'vb' in r || 'vd' in r || 's' in r) skipped++;
        continue; // base-only record, or a non-numeric one
      }
      const { device, metric } = splitName(bn, n, ctx);
      const value = bv + v;
      if (!Number.isFinite(value)) fail('not_a_number', 'SenML value overflows');
      const rt = bt + (t ?? 0);
      const ms = rt < RELATIVE_BELOW ? ctx.arrivalTs + rt * 1000 : rt * 1000;
      if (!Number.isFinite(ms) || ms < MIN_TS || ms >= MAX_TS)
        fail('bad_timestamp', 'SenML time out of range [1970, 2100)');
      const reading: Reading = {
        device: checkName(device, 'device'),
        metric: checkName(metric, 'metric'),
        value,
        ts: Math.round(ms),
      };
      if (u !== undefined && u !== '') reading.unit = checkName(u, 'unit');
      out.push(reading);
    }
    if (out.length === 0) fail(skipped > 0 ? 'not_a_number' : 'no_value', 'SenML pack has no numeric value');
    if (!timed) for (const r of out) r.arrivalTime = true;
    return out;
  }
}

export const senmlFormat: DecoderDescriptor = {
  type: 'senml',
  summary: 'an RFC 8428 SenML JSON pack',
  capabilities: { needsTopicMetric: false },
  create: (o) => new SenmlDecoder(o.maxFrameBytes),
};
