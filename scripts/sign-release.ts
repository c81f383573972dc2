// Signs agent executables for over-the-air updates (issue 16, docs/updates.md); the same as
// `edgeflow-collector fleet keygen | sign`, for the build (`npm run build:binaries -- --release-version V
// --sign-key FILE` calls it after building):
//
//   node --import tsx scripts/sign-release.ts keygen --out DIR
//       writes DIR/release.key (ed25519 private, PKCS#8 PEM, mode 0600) and DIR/release.pub (SPKI PEM).
//       Keep release.key offline or in the CI secret store; it never enters the repository.
//   node --import tsx scripts/sign-release.ts sign --key FILE --release-version V BINARY...
//       writes BINARY.manifest.json beside each executable (version, arch from the ELF header, size,
//       sha256, file name), signed with the key.
import { parseArgs } from 'node:util';
import { signBinaries, writeReleaseKeyPair } from '../collector/artifacts/sign.ts';
import type { ReleaseArch } from '../shared/release.ts';

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
    const k = writeReleaseKeyPair(values.out);
    process.stdout.write(
      `${k.privateFile} (private, keep offline)\n${k.publicFile} (pin on agents: update.publicKeyFile), key id ${k.keyId}\n`,
    );
    return;
  }
  if (cmd === 'sign') {
    if (!values.key || !values['release-version'] || positionals.length === 0)
      throw new Error('sign: --key FILE --release-version V BINARY... are required');
    const lines = await signBinaries(
      values.key,
      values['release-version'],
      positionals,
      values.arch as ReleaseArch | undefined,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
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
