import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EdgeflowError } from '../shared/errors.ts';
import {
  addAgent,
  CredentialStore,
  hashSecret,
  SCRYPT_PARAMS,
  verifySecret,
  withFileLock,
} from './credentials.ts';

// Cheap scrypt parameters keep the unit tests fast; the defaults are asserted separately.
const FAST = { N: 1024, r: 8, p: 1, keylen: 32 };

test('the documented scrypt defaults are N=2^15, r=8, p=1', () => {
  assert.deepEqual(SCRYPT_PARAMS, { N: 32768, r: 8, p: 1, keylen: 32 });
});

test('a hash verifies its secret only; salts differ per hash', async () => {
  const a = await hashSecret('s3cret', FAST);
  const b = await hashSecret('s3cret', FAST);
  assert.notEqual(a.salt, b.salt);
  assert.notEqual(a.hash, b.hash);
  assert.equal(await verifySecret(a, 's3cret'), true);
  assert.equal(await verifySecret(a, 's3cret '), false);
  assert.equal(await verifySecret(a, ''), false);
});

test('add-agent stores only a hash, 0600, atomically; the store verifies and picks up new agents', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-cred-'));
  const path = join(dir, 'agents.json');
  const { secret, replaced } = await addAgent(path, 'gw-1', FAST);
  assert.equal(replaced, false);
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  const text = readFileSync(path, 'utf8');
  assert.ok(!text.includes(secret), 'the secret itself must not be stored');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['agents.json'], 'no temp files left behind');

  let t = 0;
  const store = new CredentialStore(path, () => t);
  store.load();
  assert.equal(await store.verify('gw-1', secret), true);
  assert.equal(await store.verify('gw-1', 'wrong'), false);
  assert.equal(await store.verify('gw-2', secret), false);
  assert.equal(await store.verify('__proto__', secret), false);

  const second = await addAgent(path, 'gw-2', FAST);
  t += 1500; // the store re-checks the file's mtime at most once a second
  assert.equal(await store.verify('gw-2', second.secret), true);

  const again = await addAgent(path, 'gw-1', FAST);
  assert.equal(again.replaced, true);
  t += 1500;
  assert.equal(
    await store.verify('gw-1', secret),
    false,
    'a replaced credential (and its cache entry) is dead',
  );
  assert.equal(await store.verify('gw-1', again.secret), true);
});

test('verified secrets are cached: the second check skips scrypt', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-cred-'));
  const path = join(dir, 'agents.json');
  // Slow parameters so the difference is measurable.
  const { secret } = await addAgent(path, 'gw-1', { N: 2 ** 15, r: 8, p: 1, keylen: 32 });
  const store = new CredentialStore(path);
  store.load();
  let t0 = performance.now();
  assert.equal(await store.verify('gw-1', secret), true);
  const first = performance.now() - t0;
  t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(await store.verify('gw-1', secret), true);
  const hundred = performance.now() - t0;
  assert.ok(
    hundred < first,
    `100 cached checks (${hundred.toFixed(1)} ms) should be cheaper than one scrypt (${first.toFixed(1)} ms)`,
  );
});

test('the credentials lock: a lock left by a dead process is taken over; a live holder is waited for', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-lock-'));
  const path = join(dir, 'agents.json');
  // A pid that is not running: spawn a process that exits, and use its pid.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  writeFileSync(`${path}.lock`, String(dead));
  assert.equal((await addAgent(path, 'gw-1', FAST)).replaced, false);
  assert.equal(existsSync(`${path}.lock`), false);
  // Held by this (live) process: add-agent waits, then fails naming the lock.
  writeFileSync(`${path}.lock`, String(process.pid));
  await assert.rejects(
    withFileLock(path, () => 1, 200),
    (e: EdgeflowError) => e.code === 'STORE_WRITE_FAILED',
  );
  rmSync(`${path}.lock`);
  assert.equal(await withFileLock(path, () => 2), 2);
});
