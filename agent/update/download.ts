// Downloading a release from the collector (issue 16): manifest first (small; its signature is checked
// against the pinned key before a byte of the executable is fetched), then the executable into
// `<dataDir>/update/<version>/`, resumed with Range/If-Range after any interruption (process killed,
// link down), within a byte budget and a bandwidth cap. The finished file is checked for size and
// SHA-256 against the verified manifest; a mismatch deletes it and is reported as refused (never
// executed). Only a verified file is renamed to its final name: install.ts only ever sees those.

import type { KeyObject } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { httpRequest, readBody } from '../../shared/http-client.ts';
import {
  checkArtifact,
  type ReleaseArch,
  type ReleaseManifest,
  releaseManifestPath,
  verifyReleaseManifest,
} from '../../shared/release.ts';

export interface DownloadOptions {
  /** Collector base URL (http(s)://host:port). */
  url: string;
  version: string;
  arch: ReleaseArch;
  username?: string;
  password?: string;
  publicKey: KeyObject;
  /** PEM of the CA that signs the collector's HTTPS certificate; absent: the system's CAs. */
  ca?: Buffer;
  /** `<dataDir>/update`. */
  dir: string;
  budgetBytes: number;
  /** Bytes per second; undefined: no cap. */
  bandwidth?: number;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

export type DownloadResult =
  | { ok: true; file: string; manifest: ReleaseManifest }
  /** refused: verification failed (bad signature, wrong key, hash/size mismatch): do not retry this version. */
  | { ok: false; refused: boolean; reason: string };

/** Persistent per-version download bookkeeping (budget used, the server's validator for If-Range). */
interface Progress {
  used: number;
  etag?: string;
}

function readProgress(file: string): Progress {
  try {
    const p = JSON.parse(readFileSync(file, 'utf8')) as Progress;
    return { used: Number(p.used) || 0, etag: typeof p.etag === 'string' ? p.etag : undefined };
  } catch {
    return { used: 0 };
  }
}

function writeProgress(file: string, p: Progress): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(p));
  renameSync(`${file}.tmp`, file);
}

const FSYNC_EVERY = 4 * 1024 * 1024;
/** A signed manifest is a few hundred bytes; more is not a manifest. */
const MANIFEST_MAX_BYTES = 64 * 1024;

export async function downloadRelease(o: DownloadOptions): Promise<DownloadResult> {
  const versionDir = join(o.dir, o.version);
  mkdirSync(versionDir, { recursive: true, mode: 0o700 });
  const progressFile = join(versionDir, 'progress.json');
  const progress = readProgress(progressFile);
  const headers: Record<string, string> = {};
  if (o.username !== undefined)
    headers.authorization = `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64')}`;
  const base = o.url.replace(/\/+$/, '');
  const manifestUrl = `${base}/releases/${releaseManifestPath(o.version, o.arch)}`;

  const get = (url: string, h: Record<string, string>) =>
    httpRequest(url, { headers: h, ca: o.ca, signal: o.signal });

  // 1. The manifest: fetched every time (small), verified before anything else.
  let mbytes: Buffer;
  try {
    const mres = await get(manifestUrl, headers);
    if (mres.statusCode !== 200) {
      mres.resume();
      return { ok: false, refused: false, reason: `manifest: HTTP ${mres.statusCode} from ${manifestUrl}` };
    }
    mbytes = await readBody(mres, MANIFEST_MAX_BYTES);
  } catch (err) {
    if (o.signal?.aborted) throw err;
    return { ok: false, refused: false, reason: `manifest: ${(err as Error).message} (${manifestUrl})` };
  }
  progress.used += mbytes.length;
  const verified = verifyReleaseManifest(mbytes, o.publicKey);
  if (!verified.ok) return { ok: false, refused: true, reason: verified.reason };
  const m = verified.manifest;
  if (m.version !== o.version)
    return { ok: false, refused: true, reason: `manifest is for version ${m.version}, not ${o.version}` };
  if (m.arch !== o.arch)
    return { ok: false, refused: true, reason: `manifest is for ${m.arch}, this agent is ${o.arch}` };

  const final = join(versionDir, m.file);
  const part = `${final}.part`;
  try {
    if (statSync(final).size === m.size && (await checkArtifact(final, m)) === null)
      return { ok: true, file: final, manifest: m };
  } catch {
    // not downloaded yet
  }
  if (m.size > o.budgetBytes)
    return {
      ok: false,
      refused: false,
      reason: `artifact is ${m.size} bytes, over the byte budget of ${o.budgetBytes}`,
    };

  // 2. The executable, resumed from what is on disk.
  for (;;) {
    let have = partSize(part);
    if (have > m.size) {
      rmSync(part, { force: true });
      have = 0;
    }
    if (have === m.size) break;
    if (progress.used >= o.budgetBytes) {
      writeProgress(progressFile, progress);
      return budgetExhausted(progress.used, o.budgetBytes);
    }
    const h: Record<string, string> = { ...headers };
    if (have > 0) {
      // Only the bytes the budget allows; If-Range: a replaced file comes whole (200), not spliced.
      h.range = `bytes=${have}-${Math.min(m.size - 1, have + (o.budgetBytes - progress.used) - 1)}`;
      if (progress.etag) h['if-range'] = progress.etag;
    } else if (m.size > o.budgetBytes - progress.used) {
      h.range = `bytes=0-${o.budgetBytes - progress.used - 1}`;
    }
    let res: Awaited<ReturnType<typeof get>>;
    try {
      res = await get(`${base}/releases/${encodeURIComponent(m.version)}/${encodeURIComponent(m.file)}`, h);
    } catch (err) {
      if (o.signal?.aborted) throw err;
      writeProgress(progressFile, progress);
      return { ok: false, refused: false, reason: `artifact: ${(err as Error).message}` };
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      res.resume();
      writeProgress(progressFile, progress);
      return { ok: false, refused: false, reason: `artifact: HTTP ${res.statusCode}` };
    }
    const etagHeader = res.headers.etag;
    const etag = typeof etagHeader === 'string' ? etagHeader : undefined;
    if (res.statusCode === 200) have = 0; // whole file: start over
    progress.etag = etag;
    writeProgress(progressFile, progress);
    const fd = openSync(part, have === 0 ? 'w' : 'a');
    let sinceSync = 0;
    const started = performance.now();
    let got = 0;
    try {
      for await (const whole of res as AsyncIterable<Buffer>) {
        const room = o.budgetBytes - progress.used;
        const chunk = whole.length > room ? whole.subarray(0, Math.max(0, room)) : whole;
        writeSync(fd, chunk);
        got += chunk.length;
        have += chunk.length;
        progress.used += chunk.length;
        sinceSync += chunk.length;
        if (sinceSync >= FSYNC_EVERY) {
          fsyncSync(fd);
          writeProgress(progressFile, progress);
          sinceSync = 0;
        }
        o.onProgress?.(have, m.size);
        if (o.bandwidth) {
          // Pace to the cap: sleep until the bytes received so far are within budget of time.
          const ahead = (got / o.bandwidth) * 1000 - (performance.now() - started);
          if (ahead > 5) await delay(ahead, undefined, { signal: o.signal });
        }
        if (have > m.size) break;
        // A whole-file answer (the file changed on the server) is not allowed past the budget either.
        if (progress.used >= o.budgetBytes && have < m.size) break;
      }
      fsyncSync(fd);
    } catch (err) {
      writeProgress(progressFile, progress);
      return { ok: false, refused: false, reason: `artifact: ${(err as Error).message}` };
    } finally {
      closeSync(fd);
      writeProgress(progressFile, progress);
    }
  }

  writeProgress(progressFile, progress);
  // 3. Verify against the signed manifest; only then give the file its final name.
  const bad = await checkArtifact(part, m);
  if (bad !== null) {
    rmSync(part, { force: true });
    return { ok: false, refused: true, reason: `artifact refused: ${bad}` };
  }
  renameSync(part, final);
  return { ok: true, file: final, manifest: m };
}

function partSize(part: string): number {
  try {
    return statSync(part).size;
  } catch {
    return 0;
  }
}

function budgetExhausted(used: number, budget: number): DownloadResult {
  return { ok: false, refused: false, reason: `byte budget exhausted: ${used} of ${budget} bytes used` };
}
