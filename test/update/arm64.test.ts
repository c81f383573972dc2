// The arm64 executable's verify-and-swap path (issue 16), run under qemu-user on this x64 host: the
// arm64 build of the agent installs a signed arm64 release over a copy of itself with
// `install-release` (manifest signature, size, SHA-256, the swap of agent/update/install.ts), refuses a
// tampered executable and a manifest signed by another key, and the ExecStartPre guard then counts the
// trial start. The download and health parts are the same code as on x64 (test/update/ota.test.ts).
// Skipped, with the reason printed, when EDGEFLOW_SKIP_BINARIES is set or qemu-user is missing
// (scripts/services.sh up installs qemu-user-static and the arm64 C runtime).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readDiskState, swapPaths } from '../../agent/update/install.ts';
import { signBinary } from '../../collector/artifacts/sign.ts';
import { tempDir } from '../helpers/agent-process.ts';
import { type Built, buildRelease, ROOT, testKeys } from './builds.ts';

const QEMU = 'qemu-aarch64-static';
const SYSROOT = '/usr/aarch64-linux-gnu';
const haveQemu =
  spawnSync('sh', ['-c', `command -v ${QEMU}`]).status === 0 && existsSync(join(SYSROOT, 'lib'));
const SKIP = process.env.EDGEFLOW_SKIP_BINARIES
  ? 'EDGEFLOW_SKIP_BINARIES is set'
  : haveQemu
    ? false
    : `${QEMU} or ${SYSROOT} missing (scripts/services.sh up installs qemu-user-static, libc6-arm64-cross, libstdc++6-arm64-cross)`;
if (SKIP) process.stderr.write(`# test/update/arm64.test.ts skipped: ${SKIP}\n`);

const V = { a: '9.1.0-arm.a', b: '9.2.0-arm.b' };
let a: Built;
let b: Built;
let dir: string;

before(() => {
  if (SKIP) return;
  a = buildRelease('A-arm64', V.a, { arch: 'arm64' });
  b = buildRelease('B-arm64', V.b, { arch: 'arm64' });
  dir = tempDir('edgeflow-ota-arm64-');
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function arm64(binary: string, args: string[]) {
  return spawnSync(QEMU, ['-L', SYSROOT, binary, ...args], { encoding: 'utf8', timeout: 300_000 });
}

/** A release directory holding B's executable and manifest (optionally altered). */
function release(name: string): { bin: string; manifest: string } {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const bin = join(d, 'edgeflow-agent-linux-arm64');
  copyFileSync(b.binary, bin);
  copyFileSync(b.manifestFile, `${bin}.manifest.json`);
  return { bin, manifest: `${bin}.manifest.json` };
}

function installedCopy(name: string): string {
  mkdirSync(join(dir, name), { recursive: true });
  const target = join(dir, name, 'edgeflow-agent');
  copyFileSync(a.binary, target);
  return target;
}

test('arm64: install-release verifies and swaps; the new executable starts, the old is the fallback', {
  skip: SKIP,
  timeout: 600_000,
}, () => {
  const target = installedCopy('lib-ok');
  const r = release('rel-ok');
  const res = arm64(target, [
    'install-release',
    '--manifest',
    r.manifest,
    '--public-key',
    testKeys().pub,
    '--binary',
    target,
  ]);
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`installed ${V.b.replaceAll('.', '\\.')}`));
  assert.equal(arm64(target, ['--version']).stdout.trim(), V.b);
  assert.equal(arm64(`${target}.prev`, ['--version']).stdout.trim(), V.a);
  const p = swapPaths(target);
  assert.deepEqual(
    [readDiskState(p)?.phase, readDiskState(p)?.from, readDiskState(p)?.to],
    ['trial', V.a, V.b],
  );
  const g = spawnSync('sh', [join(ROOT, 'deploy/systemd/edgeflow-agent-update-guard'), target], {
    encoding: 'utf8',
  });
  assert.equal(g.status, 0);
  assert.equal(readDiskState(p)?.boots, 1);
});

test('arm64: a tampered executable and a manifest signed by another key are refused; nothing swapped', {
  skip: SKIP,
  timeout: 600_000,
}, async () => {
  const target = installedCopy('lib-bad');
  const t = release('rel-tampered');
  const bytes = readFileSync(t.bin);
  bytes[bytes.length - 64] = bytes[bytes.length - 64]! ^ 0xff;
  writeFileSync(t.bin, bytes);
  const res = arm64(target, [
    'install-release',
    '--manifest',
    t.manifest,
    '--public-key',
    testKeys().pub,
    '--binary',
    target,
  ]);
  assert.equal(res.status, 2);
  assert.match(res.stderr, /refused: sha256 mismatch/);

  const w = release('rel-wrong-key');
  const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  await signBinary(w.bin, V.b, other, 'arm64');
  const res2 = arm64(target, [
    'install-release',
    '--manifest',
    w.manifest,
    '--public-key',
    testKeys().pub,
    '--binary',
    target,
  ]);
  assert.equal(res2.status, 2);
  assert.match(res2.stderr, /refused: manifest signed by unknown key/);

  assert.equal(arm64(target, ['--version']).stdout.trim(), V.a);
  assert.ok(!existsSync(`${target}.prev`) && !existsSync(`${target}.new`) && !existsSync(`${target}.update`));
});
