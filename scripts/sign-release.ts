// Signs agent executables for over-the-air updates (issue 16, docs/updates.md):
//
//   node --import tsx scripts/sign-release.ts keygen --out DIR
//       writes DIR/release.key (ed25519 private, PKCS#8 PEM, mode 0600) and DIR/release.pub (SPKI PEM).
//       Keep release.key offline or in the CI secret store; it never enters the repository.
//   node --import tsx scripts/sign-release.ts sign --key FILE --release-version V BINARY...
//       writes BINARY.manifest.json beside each executable (version, arch from the ELF header, size,
//       sha256, file name), signed with the key. `npm run build:binaries -- --release-version V
//       --sign-key FILE` calls this after building.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { keyIdOf, parsePrivateKey } from '../shared/fleet.ts';
import {
  hashFile,
  manifestFileName,
  RELEASE_VERSION_RE,
  type ReleaseArch,
  signReleaseManifest,
} from '../shared/release.ts';

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

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      key: { type: 'string' },
      'release-version': { type: 'string' },
      arch: { type: 'string' },
    },
  });
  if (cmd === 'keygen') {
    if (!values.out) throw new Error('keygen: --out DIR is required');
    mkdirSync(values.out, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const priv = join(values.out, 'release.key');
    writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    writeFileSync(join(values.out, 'release.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    process.stdout.write(
      `${priv} (private, keep offline)\n${join(values.out, 'release.pub')} (pin on agents: update.publicKeyFile), key id ${keyIdOf(publicKey)}\n`,
    );
    return;
  }
  if (cmd === 'sign') {
    if (!values.key || !values['release-version'] || positionals.length === 0)
      throw new Error('sign: --key FILE --release-version V BINARY... are required');
    const pem = readFileSync(values.key);
    for (const b of positionals) {
      const { out, manifest } = await signBinary(
        b,
        values['release-version'],
        pem,
        values.arch as ReleaseArch | undefined,
      );
      process.stdout.write(
        `${out}: ${manifest.version} ${manifest.arch} ${manifest.size} bytes, key ${manifest.keyId}\n`,
      );
    }
    return;
  }
  throw new Error('usage: sign-release.ts keygen --out DIR | sign --key FILE --release-version V BINARY...');
}

if (process.argv[1]?.endsWith('sign-release.ts')) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`sign-release: ${(err as Error).message}\n`);
    process.exit(2);
  });
}
