// Release artifacts for over-the-air agent updates (issue 16): the signed manifest that travels with
// each executable, and the update report an agent carries in its status.
//
// The manifest is signed the same way as the fleet's desired-state documents (shared/fleet.ts): ed25519
// over the RFC 8785 canonical JSON of the manifest without `sig`, with the key id of the signer. The
// release key is not the fleet key: an operator who can change configuration cannot ship code unless
// they also hold the release key (docs/updates.md). Only the public half is pinned on the agent.
import { createHash, type KeyObject, sign, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { z } from 'zod';
import { canonicalJson, keyIdOf } from './fleet.ts';

export const RELEASE_ARCHES = ['x64', 'arm64'] as const;
export type ReleaseArch = (typeof RELEASE_ARCHES)[number];

/** A release version: semver-like, safe as a file-name part. */
export const RELEASE_VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

export const releaseManifestSchema = z
  .object({
    v: z.literal(1),
    kind: z.literal('release'),
    product: z.literal('agent'),
    version: z.string().regex(RELEASE_VERSION_RE),
    arch: z.enum(RELEASE_ARCHES),
    /** Bytes of the executable. */
    size: z.number().int().positive(),
    /** Hex SHA-256 of the executable. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** File name of the executable, relative to the manifest (no directories). */
    file: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$/),
    builtAt: z.number().int().optional(),
    keyId: z.string().regex(/^[0-9a-f]{16}$/),
    sig: z.string().min(1),
  })
  .strict();
export type ReleaseManifest = z.infer<typeof releaseManifestSchema>;
export type UnsignedReleaseManifest = Omit<ReleaseManifest, 'sig' | 'keyId'>;

/** `<binary>.manifest.json` beside each executable. */
export const manifestFileName = (binary: string) => `${binary}.manifest.json`;

/**
 * Where a release lives under the collector's releases directory (and its URL path under /releases/):
 * `<version>/edgeflow-agent-linux-<arch>` and its manifest beside it, as `npm run build:binaries` wrote them.
 */
export function releaseBinaryName(arch: ReleaseArch): string {
  return `edgeflow-agent-linux-${arch}`;
}
export function releaseManifestPath(version: string, arch: ReleaseArch): string {
  return `${version}/${manifestFileName(releaseBinaryName(arch))}`;
}

export function signReleaseManifest(m: UnsignedReleaseManifest, privateKey: KeyObject): ReleaseManifest {
  const unsigned = { ...m, keyId: keyIdOf(privateKey) };
  const sig = sign(null, Buffer.from(canonicalJson(unsigned)), privateKey).toString('base64');
  return { ...unsigned, sig };
}

export type ManifestResult = { ok: true; manifest: ReleaseManifest } | { ok: false; reason: string };

/** Parses a manifest and checks its signature against the pinned key. Reasons are short and stable. */
export function verifyReleaseManifest(payload: Buffer | string, publicKey: KeyObject): ManifestResult {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString());
  } catch {
    return { ok: false, reason: 'manifest malformed: not JSON' };
  }
  const parsed = releaseManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return { ok: false, reason: `manifest malformed: ${i?.path.join('.')}: ${i?.message}` };
  }
  const manifest = parsed.data;
  if (manifest.keyId !== keyIdOf(publicKey))
    return { ok: false, reason: `manifest signed by unknown key ${manifest.keyId}` };
  const { sig, ...unsigned } = manifest;
  if (!verify(null, Buffer.from(canonicalJson(unsigned)), publicKey, Buffer.from(sig, 'base64')))
    return { ok: false, reason: 'manifest signature invalid' };
  return { ok: true, manifest };
}

/** Size and hex SHA-256 of a file, streamed (a 110 MB executable is not read into memory). */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: h.digest('hex') };
}

/** Checks a downloaded file against its (verified) manifest. null when it matches, else the reason. */
export async function checkArtifact(path: string, m: ReleaseManifest): Promise<string | null> {
  const { size, sha256 } = await hashFile(path);
  if (size !== m.size) return `size mismatch: ${size} bytes, manifest says ${m.size}`;
  if (sha256 !== m.sha256) return 'sha256 mismatch';
  return null;
}

export const UPDATE_STATES = [
  'idle',
  'downloading',
  'verified',
  'trial',
  'committed',
  'rolled_back',
  'refused',
  'failed',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

/**
 * `update` in the agent's status (docs/spec-extensions.md): the version it runs, the one it was told to
 * run, and where the update stands. idle: nothing wanted; downloading; verified: artifact checked, swap
 * next; trial: new binary running, health not yet confirmed; committed; rolled_back: the new binary
 * was unhealthy or crashed, back on the previous one; refused: the artifact or manifest failed
 * verification (never executed); failed: download or install error (retried later).
 */
export const updateReportSchema = z.object({
  running: z.string().max(64),
  wanted: z.string().max(64).optional(),
  state: z.enum(UPDATE_STATES),
  reason: z.string().max(1024).optional(),
  /** Bytes downloaded of the wanted artifact (while downloading). */
  bytes: z.number().int().min(0).optional(),
  at: z.number().int(),
});
export type UpdateReport = z.infer<typeof updateReportSchema>;
