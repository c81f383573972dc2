// Release builds for the update tests: the real build script (scripts/build-binaries.mjs) with
// --release-version and --sign-key, into dist/ota/<name>/. The script's own fingerprint (bundle, Node,
// assets, recipe) is the input hash: an unchanged tree re-bundles (~3 s), re-signs and stops there, so a
// run builds each executable at most once and later runs reuse it. Serialised with every other build
// by the script's lock. The test key lives beside the builds (dist/ota/test-release.key), not in git.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manifestFileName, type ReleaseArch, type ReleaseManifest } from '../../shared/release.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = join(ROOT, 'dist/ota');

export function testKeys(): { key: string; pub: string } {
  mkdirSync(OUT, { recursive: true });
  const key = join(OUT, 'test-release.key');
  const pub = join(OUT, 'test-release.pub');
  if (!existsSync(key) || !existsSync(pub)) {
    const kp = generateKeyPairSync('ed25519');
    writeFileSync(key, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(pub, kp.publicKey.export({ type: 'spki', format: 'pem' }));
  }
  return { key, pub };
}

export interface Built {
  binary: string;
  manifestFile: string;
  manifest: ReleaseManifest;
}

/** Builds (or finds up to date) the agent executable `name` reporting `version`. */
export function buildRelease(
  name: string,
  version: string,
  opts: { arch?: ReleaseArch; entry?: string } = {},
): Built {
  const arch = opts.arch ?? 'x64';
  const out = join(OUT, name);
  const { key } = testKeys();
  const args = [
    join(ROOT, 'scripts/build-binaries.mjs'),
    '--product',
    'agent',
    '--arch',
    arch,
    '--out',
    out,
    '--release-version',
    version,
    '--sign-key',
    key,
    ...(opts.entry ? ['--entry', opts.entry] : []),
  ];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 1_200_000 });
  if (r.status !== 0)
    throw new Error(`build ${name} failed (${r.status ?? r.signal}):\n${r.stderr.slice(-3000)}`);
  const binary = join(out, `edgeflow-agent-linux-${arch}`);
  const manifestFile = manifestFileName(binary);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as ReleaseManifest;
  process.stderr.write(
    `# build ${name} (${version}, ${arch}): ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return { binary, manifestFile, manifest };
}
