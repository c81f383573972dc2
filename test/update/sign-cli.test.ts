// `edgeflow-collector fleet keygen | sign` as real processes (issue 16: "signed with an ed25519 release
// key, `edgeflow-collector fleet sign` or a build flag"): the manifest it writes verifies against the
// public key it wrote and matches the executable; bad input is one line and exit 2, nothing written.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parsePublicKey } from '../../shared/fleet.ts';
import { checkArtifact, verifyReleaseManifest } from '../../shared/release.ts';
import { CLI, ROOT } from '../fleet/kit.ts';

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-sign-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), 'fleet', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('fleet keygen then fleet sign: the manifest verifies with release.pub and matches the executable', async () => {
  const keys = join(dir, 'keys');
  const kg = cli(['keygen', '--out', keys]);
  assert.equal(kg.code, 0, kg.stderr);
  assert.equal(statSync(join(keys, 'release.key')).mode & 0o777, 0o600);
  const bin = join(dir, 'edgeflow-agent-linux-x64');
  copyFileSync(process.execPath, bin); // an x64 ELF executable of realistic size
  const sg = cli(['sign', '--key', join(keys, 'release.key'), '--release-version', '2.0.1', bin]);
  assert.equal(sg.code, 0, sg.stderr);
  assert.match(sg.stdout, /manifest\.json: 2\.0\.1 x64 \d+ bytes, key [0-9a-f]{16}\n$/);
  const v = verifyReleaseManifest(
    readFileSync(`${bin}.manifest.json`),
    parsePublicKey(readFileSync(join(keys, 'release.pub'))),
  );
  assert.ok(v.ok, v.ok ? '' : v.reason);
  assert.equal(v.manifest.version, '2.0.1');
  assert.equal(await checkArtifact(bin, v.manifest), null);
  // Another key pair's public key does not verify it.
  assert.equal(cli(['keygen', '--out', join(dir, 'other')]).code, 0);
  const other = verifyReleaseManifest(
    readFileSync(`${bin}.manifest.json`),
    parsePublicKey(readFileSync(join(dir, 'other/release.pub'))),
  );
  assert.equal(other.ok, false);
});

test('bad input: one line, exit 2, nothing written or overwritten', () => {
  const keys = join(dir, 'keys2');
  assert.equal(cli(['keygen', '--out', keys]).code, 0);
  const before = readFileSync(join(keys, 'release.key'), 'utf8');
  const again = cli(['keygen', '--out', keys]);
  assert.equal(again.code, 2);
  assert.equal(again.stderr, `fleet keygen: ${join(keys, 'release.key')} exists; not overwritten\n`);
  assert.equal(readFileSync(join(keys, 'release.key'), 'utf8'), before);
  const notElf = join(dir, 'not-an-executable');
  writeFileSync(notElf, 'hello');
  const r = cli(['sign', '--key', join(keys, 'release.key'), '--release-version', '1.0.0', notElf]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `fleet sign: ${notElf} is not an ELF executable\n`);
  assert.equal(existsSync(`${notElf}.manifest.json`), false);
  const noKey = cli(['sign', '--key', join(dir, 'missing.key'), '--release-version', '1.0.0', notElf]);
  assert.equal(noKey.code, 2);
  assert.equal(noKey.stderr, `fleet sign: ${join(dir, 'missing.key')}: ENOENT\n`);
});
