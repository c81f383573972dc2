// Checkpoint value encoding (SD-card friendliness, issue 4; docs/design/outbox.md "SD cards").
//
// The window snapshot is ~16 KB of JSON rewritten at every checkpoint; SQLite writes it as whole 4 KB
// overflow pages to the WAL and again to the database at the WAL checkpoint. Deflated it is a few KB.
// Stored form: values of at least MIN_BYTES become `z1:` + base64(deflateRaw(JSON)) (the column is
// TEXT and the Outbox interface carries strings; base64's 4/3 is small next to deflate's gain).
// Smaller values stay plain JSON. Reading accepts both, so checkpoints written by older agents (plain
// JSON text) still load, and an older agent reading a `z1:` value fails JSON.parse and reports a state
// reset (STORE_CORRUPT) rather than misreading it.
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync, constants as zc } from 'node:zlib';

const PREFIX = 'z1:';
/** Below this, deflate + base64 saves less than a page and costs CPU: keep plain JSON. */
const MIN_BYTES = 1024;

/**
 * The UTF-8 of the value being hashed and deflated, reused: a checkpoint at 10,000 keys deflates ~640
 * rows of 30–320 KB, and a `Buffer.from` each was ~17 MiB a second of malloc'ed memory that lived until
 * V8's next GC (issue 14). Values larger than SCRATCH_MAX get a Buffer of their own, so this stays small.
 */
const SCRATCH_MAX = 1 << 20;
let scratch: Buffer | null = null;

/** The UTF-8 bytes of `json`: a view of `scratch`, valid until the next call. */
function utf8(json: string): Buffer {
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > SCRATCH_MAX) return Buffer.from(json, 'utf8');
  // Allocated on first use: an agent whose values stay small never needs it.
  if (scratch === null || bytes > scratch.length)
    scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(64 * 1024, bytes * 2)));
  return scratch.subarray(0, scratch.write(json, 'utf8'));
}

/**
 * What the checkpointer keeps of a value as written, to write only values that changed: short ones
 * themselves, long ones a SHA-1 (~1 GB/s; not a security use). Hashed from `utf8`'s reused bytes, not
 * the string: `hash.update(string)` converts it into a malloc'ed buffer of its own, and at 10,000 keys
 * that was ~640 allocations a second of up to ~320 KB, transient, but above glibc's mmap threshold
 * only until the first one was freed: glibc then raises the threshold and serves them from the `[heap]`,
 * where they left holes of 0.7–1.8 MB that stayed resident (malloc_info at 10k keys: 9.5 MB of the
 * 17 MB `[heap]` free; BENCHMARKS.md section 14).
 */
export function checkpointDigest(json: string): string {
  return json.length <= 64 ? `=${json}` : hashOf(utf8(json));
}

const hashOf = (bytes: Buffer) => `#${createHash('sha1').update(bytes).digest('base64')}`;

/**
 * A value's digest (checkpointDigest) and, when it differs from `last`, its stored form; the UTF-8
 * bytes are made once for both.
 */
export function encodeIfChanged(
  json: string,
  last: string | undefined,
): [digest: string, stored: string | undefined] {
  if (json.length <= 64) {
    const dg = checkpointDigest(json);
    return [dg, dg === last ? undefined : json];
  }
  const bytes = utf8(json);
  const dg = hashOf(bytes);
  if (dg === last) return [dg, undefined];
  return [dg, json.length < MIN_BYTES ? json : deflated(bytes)];
}

export function encodeCheckpointValue(json: string): string {
  if (json.length < MIN_BYTES) return json;
  return deflated(utf8(json));
}

/**
 * Level 6 (zlib default): level 9 gained <3 % on window snapshots for ~2x the CPU. `chunkSize` 4 KiB,
 * not zlib's 16 KiB: each deflateRawSync takes its output buffer from Node's shared Buffer pool (64 KiB
 * in Node 24), and the deflated row (a slice of it) keeps that pool alive until V8's next GC; with 16
 * KiB a pool was gone every 4 rows, and at 10,000 keys (~640 rows a second, 1.9 KB each deflated on
 * average) up to ~96 pools, 6.3 MB of malloc'ed memory, waited for a GC at once (heaptrack's peak).
 * A larger row takes several chunks, joined by Buffer.concat.
 */
const DEFLATE_OPTIONS = { level: 6, strategy: zc.Z_DEFAULT_STRATEGY, chunkSize: 4096 };

function deflated(input: Buffer): string {
  return PREFIX + deflateRawSync(input, DEFLATE_OPTIONS).toString('base64');
}

/** The JSON text of a stored value (plain JSON from any agent version, or `z1:`). Throws if damaged. */
export function decodeCheckpointValue(stored: string): string {
  if (!stored.startsWith(PREFIX)) return stored;
  return inflateRawSync(Buffer.from(stored.slice(PREFIX.length), 'base64')).toString('utf8');
}
