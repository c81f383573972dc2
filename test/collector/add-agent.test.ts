// `edgeflow-collector add-agent` as real processes (issue 12, item 12): ids that the shared rule refuses,
// and N runs at once against one credentials file, none of whose credentials may be lost.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CredentialStore } from '../../shared/credentials.ts';
import { repoRoot } from '../helpers/services.ts';

const ROOT = repoRoot();
const CLI = ['--import', 'tsx', join(ROOT, 'collector/main.ts')];

test('add-agent refuses ids outside the shared rule (exit 2), and writes nothing', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'edgeflow-addagent-')), 'agents.json');
  for (const id of ['__proto__', '.', '..', '-', '_x', 'a/b']) {
    const r = spawnSync(process.execPath, [...CLI, 'add-agent', '--credentials', path, '--', id], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 2, `${id}: ${r.stderr}`);
    assert.match(r.stderr, /starting with a letter or digit/);
    assert.equal(r.stdout, '', 'no secret printed');
  }
  assert.equal(existsSync(path), false);
});

test('8 add-agent processes at once on one file: every credential is kept and verifies', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'edgeflow-addagent-')), 'agents.json');
  const ids = Array.from({ length: 8 }, (_, i) => `gw-${i}`);
  const runs = ids.map(async (id) => {
    const p = spawn(process.execPath, [...CLI, 'add-agent', id, '--credentials', path], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const [code] = await once(p, 'exit');
    assert.equal(code, 0, `${id}: ${err}`);
    return [id, out.trim()] as const;
  });
  const secrets = await Promise.all(runs);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.deepEqual(Object.keys(file.agents).sort(), ids);
  assert.equal(existsSync(`${path}.lock`), false, 'the lock is released');
  const store = new CredentialStore(path);
  store.load();
  for (const [id, secret] of secrets) assert.equal(await store.verify(id, secret), true, id);
});
