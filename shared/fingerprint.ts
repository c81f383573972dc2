// One fingerprint for "is this the same spec as the one in the checkpoint?" (window specs, rules; issue 13
// had two). Canonical JSON (keys sorted, undefined dropped) so key order in the YAML never matters, then
// the first 64 bits of its SHA-256: short enough to store per rule and per window in every checkpoint.
import { createHash } from 'node:crypto';

/** JSON with sorted object keys and undefined members left out; equal values give equal strings. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** 16 hex characters identifying `v` (canonical JSON, SHA-256). */
export function fingerprint(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 16);
}
