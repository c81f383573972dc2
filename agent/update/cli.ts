// `edgeflow-agent install-release` (issue 16): a manual install from files, for a gateway without a
// collector link (a release copied on a USB stick) or to stage by hand. The same checks as an update
// over the air: the manifest's signature against the public key, size and SHA-256 of the executable
// beside it, then the same swap (install.ts). The new executable runs at the next start of the service
// as a trial: health within update.healthDeadline, or the previous one comes back.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parsePublicKey } from '../../shared/fleet.ts';
import { checkArtifact, verifyReleaseManifest } from '../../shared/release.ts';
import { install, swapPaths } from './install.ts';
import { defaultBinary } from './updater.ts';

export async function installRelease(o: {
  manifest: string;
  publicKey: string;
  binary?: string;
  running: string;
}): Promise<{ ok: true; message: string } | { ok: false; problem: string }> {
  const binary = o.binary ?? defaultBinary();
  if (!binary) return { ok: false, problem: '--binary: required when not run as the installed executable' };
  let key: ReturnType<typeof parsePublicKey>;
  try {
    key = parsePublicKey(readFileSync(o.publicKey));
  } catch (err) {
    return { ok: false, problem: `--public-key: ${(err as Error).message}` };
  }
  let text: Buffer;
  try {
    text = readFileSync(o.manifest);
  } catch (err) {
    return { ok: false, problem: `--manifest: ${(err as Error).message}` };
  }
  const v = verifyReleaseManifest(text, key);
  if (!v.ok) return { ok: false, problem: `--manifest: refused: ${v.reason}` };
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  if (v.manifest.arch !== arch)
    return { ok: false, problem: `--manifest: refused: release is for ${v.manifest.arch}, this is ${arch}` };
  const artifact = join(dirname(o.manifest), v.manifest.file);
  let bad: string | null;
  try {
    bad = await checkArtifact(artifact, v.manifest);
  } catch (err) {
    return { ok: false, problem: `${artifact}: ${(err as Error).message}` };
  }
  if (bad) return { ok: false, problem: `${artifact}: refused: ${bad}` };
  install(swapPaths(binary), artifact, { from: o.running, to: v.manifest.version });
  return {
    ok: true,
    message: `installed ${v.manifest.version} at ${binary} (previous kept as ${binary}.prev); restart the service: systemctl restart edgeflow-agent`,
  };
}
