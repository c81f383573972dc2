// Release signing (issue 16, docs/updates.md): a manifest (version, arch from the ELF header, size,
// sha256, file name) signed with the ed25519 release key, written beside each agent executable; and the
// key pair itself. Used by `edgeflow-collector fleet keygen | sign`, `scripts/sign-release.ts` and
// `npm run build:binaries -- --sign-key` (through that script). The private key never enters the repo.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { keyIdOf, parsePrivateKey } from '../../shared/fleet.ts';
import {
  hashFile,
  manifestFileName,
  RELEASE_VERSION_RE,
  type ReleaseArch,
  signReleaseManifest,
} from '../../shared/release.ts';

const ELF_MACHINE: Record<number, ReleaseArch> = { 62: 'x64', 183: 'arm64' };

function archOf(path: string): ReleaseArch {
  const head = readFileSync(path).subarray(0, 20);
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path} is not an ELF executable`);
  const arch = ELF_MACHINE[head.readUInt16LE(18)];
  if (!arch) throw new Error(`${path}: unsupported ELF machine ${head.readUInt16LE(18)}`);
  return arch;
}

export async function signBinary(
  binary: string,
  version: string,
  keyPem: string | Buffer,
  arch?: ReleaseArch,
) {
  if (!RELEASE_VERSION_RE.test(version))
    throw new Error(`release version "${version}": ${RELEASE_VERSION_RE}`);
  const key = parsePrivateKey(keyPem);
  const { size, sha256 } = await hashFile(binary);
  const manifest = signReleaseManifest(
    {
      v: 1,
      kind: 'release',
      product: 'agent',
      version,
      arch: arch ?? archOf(binary),
      size,
      sha256,
      file: basename(binary),
      builtAt: Date.now(),
    },
    key,
  );
  const out = manifestFileName(binary);
  writeFileSync(out, `${JSON.stringify(manifest, null, 2)}\n`);
  return { out, manifest };
}

/** Writes DIR/release.key (PKCS#8 PEM, 0600, never overwritten) and DIR/release.pub (SPKI PEM). */
export function writeReleaseKeyPair(dir: string): { privateFile: string; publicFile: string; keyId: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateFile = join(dir, 'release.key');
  const publicFile = join(dir, 'release.pub');
  writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
    flag: 'wx',
  });
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateFile, publicFile, keyId: keyIdOf(publicKey) };
}

/** Signs each executable with the key file; one line per manifest written. */
export async function signBinaries(
  keyFile: string,
  version: string,
  binaries: string[],
  arch?: ReleaseArch,
): Promise<string[]> {
  const pem = readFileSync(keyFile);
  const lines: string[] = [];
  for (const b of binaries) {
    const { out, manifest } = await signBinary(b, version, pem, arch);
    lines.push(`${out}: ${manifest.version} ${manifest.arch} ${manifest.size} bytes, key ${manifest.keyId}`);
  }
  return lines;
}
