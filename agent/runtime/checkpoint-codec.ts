// Checkpoint value encoding (SD-card friendliness, issue 4; docs/design/outbox.md "SD cards").
//
// The window snapshot is ~16 KB of JSON rewritten at every checkpoint; SQLite writes it as whole 4 KB
// overflow pages to the WAL and again to the database at the WAL checkpoint. Deflated it is a few KB.
// Stored form: values of at least MIN_BYTES become `z1:` + base64(deflateRaw(JSON)) (the column is
// TEXT and the Outbox interface carries strings; base64's 4/3 is small next to deflate's gain).
// Smaller values stay plain JSON. Reading accepts both, so checkpoints written by older agents (plain
// JSON text) still load, and an older agent reading a `z1:` value fails JSON.parse and reports a state
// reset (STORE_CORRUPT) rather than misreading it.
import { deflateRawSync, inflateRawSync, constants as zc } from 'node:zlib';

const PREFIX = 'z1:';
/** Below this, deflate + base64 saves less than a page and costs CPU: keep plain JSON. */
const MIN_BYTES = 1024;

/**
 * The UTF-8 of the value being deflated, reused: a checkpoint at 10,000 keys deflates ~400 rows of
 * ~30 KB, and a `Buffer.from` each was ~17 MiB a second of malloc'ed memory that lived until V8's next
 * GC (issue 14). Values larger than SCRATCH_MAX get a Buffer of their own, so this stays small.
 */
const SCRATCH_MAX = 1 << 20;
let scratch: Buffer | null = null;

export function encodeCheckpointValue(json: string): string {
  if (json.length < MIN_BYTES) return json;
  const bytes = Buffer.byteLength(json, 'utf8');
  let input: Buffer;
  if (bytes > SCRATCH_MAX) input = Buffer.from(json, 'utf8');
  else {
    // Allocated on first use: an agent whose values stay small never deflates.
    if (scratch === null || bytes > scratch.length)
      scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(64 * 1024, bytes * 2)));
    input = scratch.subarray(0, scratch.write(json, 'utf8'));
  }
  // Level 6 (zlib default): level 9 gained <3 % on window snapshots for ~2x the CPU.
  const z = deflateRawSync(input, { level: 6, strategy: zc.Z_DEFAULT_STRATEGY });
  return PREFIX + z.toString('base64');
}

/** The JSON text of a stored value (plain JSON from any agent version, or `z1:`). Throws if damaged. */
export function decodeCheckpointValue(stored: string): string {
  if (!stored.startsWith(PREFIX)) return stored;
  return inflateRawSync(Buffer.from(stored.slice(PREFIX.length), 'base64')).toString('utf8');
}
