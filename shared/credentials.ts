// Agent credentials (SPEC.md section 1: `add-agent` prints the secret once and stores only a salted hash).
//
// Hash: scrypt (memory-hard, in Node's crypto, no native addon), per-agent 16-byte random salt,
// N=2^15, r=8, p=1, 32-byte key: 32 MiB and ~50-100 ms per check on a server core, which is what makes
// offline guessing expensive. That cost must not be paid on every reconnect of a legitimate fleet, so
// `CredentialStore.verify` keeps a cache of verified secrets keyed by the stored hash (value: a fast
// SHA-256 of salt+secret, compared in constant time). Wrong passwords always pay the full scrypt cost.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { EdgeflowError } from './errors.ts';
import { AGENT_ID_RE, AGENT_ID_RULE } from './topics.ts';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keylen: number;
}

export const SCRYPT_PARAMS: Readonly<ScryptParams> = { N: 2 ** 15, r: 8, p: 1, keylen: 32 };

const entrySchema = z.object({
  alg: z.literal('scrypt'),
  N: z.number().int().min(2),
  r: z.number().int().min(1),
  p: z.number().int().min(1),
  salt: z.string().min(1), // base64
  hash: z.string().min(1), // base64
  createdAt: z.string(),
});
export type CredentialEntry = z.infer<typeof entrySchema>;

const fileSchema = z.object({ version: z.literal(1), agents: z.record(z.string(), entrySchema) });
export type CredentialFile = z.infer<typeof fileSchema>;

function scryptAsync(
  secret: string,
  salt: Buffer,
  e: { N: number; r: number; p: number },
  keylen: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must exceed 128*N*r bytes (32 MiB for the defaults).
    scrypt(
      secret,
      salt,
      keylen,
      { N: e.N, r: e.r, p: e.p, maxmem: 256 * e.N * e.r + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

export async function hashSecret(
  secret: string,
  params: { N: number; r: number; p: number; keylen: number } = SCRYPT_PARAMS,
): Promise<CredentialEntry> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, params, params.keylen);
  return {
    alg: 'scrypt',
    N: params.N,
    r: params.r,
    p: params.p,
    salt: salt.toString('base64'),
    hash: key.toString('base64'),
    createdAt: new Date().toISOString(),
  };
}

export async function verifySecret(entry: CredentialEntry, secret: string): Promise<boolean> {
  const expected = Buffer.from(entry.hash, 'base64');
  const got = await scryptAsync(secret, Buffer.from(entry.salt, 'base64'), entry, expected.length);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** A new random agent secret: 32 bytes, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function readCredentialFile(path: string): CredentialFile {
  if (!existsSync(path)) return { version: 1, agents: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EdgeflowError('CONFIG_UNREADABLE', `${path}: credentials file is not valid JSON`, { cause: e });
  }
  const res = fileSchema.safeParse(raw);
  if (!res.success) throw new EdgeflowError('CONFIG_INVALID', `${path}: not an edgeflow credentials file`);
  return res.data;
}

/** Writes the file atomically (temp file in the same directory, fsync'd by writeFileSync, then rename) with 0600 perms. */
export function writeCredentialFile(path: string, file: CredentialFile): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flush: true });
  chmodSync(tmp, 0o600); // mode is masked by umask on creation
  renameSync(tmp, path);
}

/** `add-agent`: returns the new secret (to print once). Replaces an existing agent's credential. */
export async function addAgent(
  path: string,
  agentId: string,
  params = SCRYPT_PARAMS,
): Promise<{ secret: string; replaced: boolean }> {
  if (!AGENT_ID_RE.test(agentId)) {
    throw new EdgeflowError('CONFIG_INVALID', `agent id "${agentId}": expected ${AGENT_ID_RULE}`);
  }
  const secret = generateSecret();
  const entry = await hashSecret(secret, params); // the slow part, outside the lock
  // Read-modify-write under a lock: two add-agent runs at once each wrote the file they had read, and
  // all but one credential were lost (issue 12, item 12).
  return withFileLock(path, () => {
    const file = readCredentialFile(path);
    const replaced = Object.hasOwn(file.agents, agentId);
    file.agents[agentId] = entry;
    writeCredentialFile(path, file);
    return { secret, replaced };
  });
}

/**
 * Runs `fn` holding `<path>.lock`, created with O_EXCL (atomic on local filesystems) and holding the
 * holder's pid. A lock whose holder is gone (add-agent killed mid-write) is taken over. Waits up to
 * `timeoutMs`, then fails (STORE_WRITE_FAILED) naming the lock file. Why not a library: the one
 * operation needs ~30 lines, and proper-lockfile would be a new dependency for it.
 */
export async function withFileLock<T>(path: string, fn: () => T, timeoutMs = 30_000): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (holderGone(lock)) {
        // Moved aside first so that of two processes finding the same stale lock only one removes it.
        const aside = `${lock}.${process.pid}.stale`;
        try {
          renameSync(lock, aside);
          rmSync(aside, { force: true });
        } catch {
          // the other one got there first
        }
        continue;
      }
      if (performance.now() > deadline) {
        throw new EdgeflowError('STORE_WRITE_FAILED', `${lock}: held by another add-agent for too long`);
      }
      await delay(10 + Math.random() * 40);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function holderGone(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(lock, 'utf8'));
  } catch {
    return false; // removed meanwhile, or being written: try again
  }
  if (!Number.isInteger(pid) || pid <= 0) return false; // still being written
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * The collector's view of the credentials file: reloaded when its mtime changes (checked at most once a
 * second), so `add-agent` on a running collector takes effect without a restart.
 */
export class CredentialStore {
  private file: CredentialFile = { version: 1, agents: {} };
  private mtimeMs = -1;
  private lastCheck = Number.NEGATIVE_INFINITY;
  /** stored hash → sha256(salt || secret) of the secret already verified against it. */
  private verified = new Map<string, Buffer>();

  constructor(
    private readonly path: string,
    private readonly now: () => number = () => performance.now(),
    private readonly maxCache = 100_000,
  ) {}

  load(): void {
    const st = existsSync(this.path) ? statSync(this.path) : null;
    this.file = readCredentialFile(this.path);
    this.mtimeMs = st?.mtimeMs ?? -1;
    this.lastCheck = this.now();
  }

  private maybeReload(): void {
    const t = this.now();
    if (t - this.lastCheck < 1000) return;
    this.lastCheck = t;
    try {
      const m = existsSync(this.path) ? statSync(this.path).mtimeMs : -1;
      if (m !== this.mtimeMs) this.load();
    } catch {
      // keep the last good file; a half-written file cannot happen (atomic rename) but a bad edit can
    }
  }

  get agentCount(): number {
    return Object.keys(this.file.agents).length;
  }

  /** True if this secret was verified against the agent's current entry before (no scrypt). */
  verifyCached(agentId: string, secret: string): boolean {
    this.maybeReload();
    const entry = Object.hasOwn(this.file.agents, agentId) ? this.file.agents[agentId] : undefined;
    if (!entry) return false;
    const fast = createHash('sha256').update(entry.salt).update('\0').update(secret).digest();
    const cached = this.verified.get(entry.hash);
    return cached !== undefined && timingSafeEqual(cached, fast);
  }

  /** Is there an entry for this agent id (unknown ids are refused without scrypt)? */
  has(agentId: string): boolean {
    this.maybeReload();
    return Object.hasOwn(this.file.agents, agentId);
  }

  async verify(agentId: string, secret: string): Promise<boolean> {
    if (this.verifyCached(agentId, secret)) return true;
    const entry = Object.hasOwn(this.file.agents, agentId) ? this.file.agents[agentId] : undefined;
    if (!entry) return false;
    const fast = createHash('sha256').update(entry.salt).update('\0').update(secret).digest();
    const ok = await verifySecret(entry, secret);
    if (ok) {
      if (this.verified.size >= this.maxCache) this.verified.clear();
      this.verified.set(entry.hash, fast);
    }
    return ok;
  }
}
