// Downloads from the real collector (in-process, its HTTP listener with `artifacts:`): authentication
// with the agent's credentials, resume with Range after an interruption, the byte budget, the bandwidth
// cap, and refusal of a tampered artifact and of manifests signed by another key or altered.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseRange } from '../../collector/artifacts/serve.ts';
import { signBinary } from '../../collector/artifacts/sign.ts';
import { type Harness, startHarness } from '../../collector/test-support/harness.ts';
import { releaseBinaryName } from '../../shared/release.ts';
import { makeTestCerts } from '../../test/helpers/certs.ts';
import { type DownloadOptions, downloadRelease } from './download.ts';

const SIZE = 3 * 1024 * 1024 + 17;
const keys = generateKeyPairSync('ed25519');
const otherKeys = generateKeyPairSync('ed25519');
const pem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' });
let h: Harness;
let releases: string;
let work: string;
let content: Buffer;

/** Publishes `bytes` as release `version` (x64), signed with `key` (default: the release key). */
async function publish(version: string, bytes: Buffer, key: string | Buffer = pem): Promise<string> {
  const dir = join(releases, version);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, releaseBinaryName('x64'));
  writeFileSync(file, bytes);
  await signBinary(file, version, key, 'x64');
  return file;
}

function opts(version: string, extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return {
    url: h.http,
    version,
    arch: 'x64',
    username: 'gw-1',
    password: h.secrets['gw-1'],
    publicKey: keys.publicKey,
    dir: join(work, 'update'),
    budgetBytes: 64 * 1024 * 1024,
    ...extra,
  };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'edgeflow-download-'));
  releases = join(work, 'releases');
  h = await startHarness({ agents: ['gw-1'], yaml: `artifacts: { dir: ${releases} }` });
  content = randomBytes(SIZE);
});
after(async () => {
  await h?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('parseRange: single ranges, suffixes, unsatisfiable', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), [0, 9]);
  assert.deepEqual(parseRange('bytes=90-', 100), [90, 99]);
  assert.deepEqual(parseRange('bytes=-10', 100), [90, 99]);
  assert.deepEqual(parseRange('bytes=50-500', 100), [50, 99]);
  assert.equal(parseRange('bytes=100-', 100), 'invalid');
  assert.equal(parseRange('bytes=5-1', 100), 'invalid');
  assert.equal(parseRange('bytes=0-1,5-6', 100), 'invalid');
  assert.equal(parseRange(undefined, 100), null);
});

test('releases need the agent credentials; paths cannot leave the releases directory', async () => {
  await publish('1.0.0', content);
  const url = `${h.http}/releases/1.0.0/${releaseBinaryName('x64')}`;
  assert.equal((await fetch(url)).status, 401);
  const bad = `Basic ${Buffer.from('gw-1:wrong').toString('base64')}`;
  assert.equal((await fetch(url, { headers: { authorization: bad } })).status, 401);
  const good = { authorization: `Basic ${Buffer.from(`gw-1:${h.secrets['gw-1']}`).toString('base64')}` };
  const part = await fetch(url, { headers: { ...good, range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 10-19/${SIZE}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), content.subarray(10, 20));
  const r416 = await fetch(url, { headers: { ...good, range: `bytes=${SIZE}-` } });
  assert.equal(r416.status, 416);
  await r416.body?.cancel();
  // Wrong passwords count against the broker's limits (mqtt.authLimits: 5 per agent per window): then
  // refused without a password check; the agent's own (verified, cached) secret still gets in.
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await fetch(url, { headers: { authorization: bad } });
    await r.body?.cancel();
    statuses.push(r.status);
  }
  // (the right password above cleared the earlier failure, as in the broker)
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
  const head = await fetch(url, { method: 'HEAD', headers: good });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(SIZE));
  for (const p of ['/releases/../agents.json', '/releases/%2e%2e/agents.json', '/releases/1.0.0/.hidden']) {
    const r = await fetch(`${h.http}${p}`, { headers: good });
    assert.equal(r.status, 404, p);
    await r.body?.cancel();
  }
});

test('an interrupted download resumes with Range: the bytes are fetched once', async () => {
  await publish('1.1.0', content);
  const ctl = new AbortController();
  const first = await downloadRelease(
    opts('1.1.0', {
      signal: ctl.signal,
      onProgress: (bytes) => {
        if (bytes >= 1024 * 1024) ctl.abort();
      },
    }),
  );
  assert.equal(first.ok, false);
  const part = join(work, 'update/1.1.0', `${releaseBinaryName('x64')}.part`);
  const partial = readFileSync(part).length;
  assert.ok(partial >= 1024 * 1024 && partial < SIZE, `partial ${partial}`);
  const second = await downloadRelease(opts('1.1.0'));
  assert.ok(second.ok, JSON.stringify(second));
  assert.deepEqual(readFileSync(second.file), content);
  assert.ok(!existsSync(part));
  const used = JSON.parse(readFileSync(join(work, 'update/1.1.0/progress.json'), 'utf8')).used;
  // Both manifests + the file once (a restart from zero would add `partial` bytes).
  assert.ok(used < SIZE + 4096, `used ${used} bytes for a ${SIZE}-byte file`);
  // Downloading it again costs nothing more: the verified file is kept.
  const third = await downloadRelease(opts('1.1.0'));
  assert.ok(third.ok);
});

test('the byte budget: an artifact larger than the budget, and a budget used up by a restart', async () => {
  await publish('1.2.0', content);
  const tooSmall = await downloadRelease(opts('1.2.0', { budgetBytes: SIZE - 1 }));
  assert.deepEqual(tooSmall, {
    ok: false,
    refused: false,
    reason: `artifact is ${SIZE} bytes, over the byte budget of ${SIZE - 1}`,
  });
  // Half of it, then the file on the server is replaced (new validator): If-Range makes the server send
  // it whole, which the budget (1.3x) does not cover.
  const budgetBytes = Math.floor(SIZE * 1.3);
  const ctl = new AbortController();
  await downloadRelease(
    opts('1.2.0', {
      budgetBytes,
      signal: ctl.signal,
      onProgress: (b) => {
        if (b >= SIZE / 2) ctl.abort();
      },
    }),
  );
  const replaced = Buffer.from(content);
  replaced[0] = replaced[0]! ^ 1;
  await publish('1.2.0', replaced);
  const res = await downloadRelease(opts('1.2.0', { budgetBytes }));
  assert.equal(res.ok, false);
  assert.match(!res.ok ? res.reason : '', /byte budget exhausted/);
  const used = JSON.parse(readFileSync(join(work, 'update/1.2.0/progress.json'), 'utf8')).used;
  assert.ok(used <= budgetBytes, `used ${used} of ${budgetBytes}`);
});

test('the bandwidth cap paces the download', async () => {
  await publish('1.3.0', content.subarray(0, 1024 * 1024));
  const t0 = performance.now();
  const res = await downloadRelease(opts('1.3.0', { bandwidth: 512 * 1024 }));
  assert.ok(res.ok);
  // 1 MiB at 512 KiB/s cannot take less than ~2 s (a cap can only slow it down; no upper bound asserted).
  assert.ok(performance.now() - t0 >= 1800, `${performance.now() - t0} ms`);
});

test('a tampered artifact is refused and deleted; never given its final name', async () => {
  const file = await publish('1.4.0', content);
  const tampered = Buffer.from(content);
  tampered[SIZE - 1] = tampered[SIZE - 1]! ^ 0xff;
  writeFileSync(file, tampered); // same size, manifest unchanged
  const res = await downloadRelease(opts('1.4.0'));
  assert.deepEqual(res, { ok: false, refused: true, reason: 'artifact refused: sha256 mismatch' });
  assert.ok(!existsSync(join(work, 'update/1.4.0', releaseBinaryName('x64'))));
  assert.ok(!existsSync(join(work, 'update/1.4.0', `${releaseBinaryName('x64')}.part`)));
});

test('a manifest signed by another key, or altered after signing, is refused before the download', async () => {
  await publish('1.5.0', content, otherKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const wrongKey = await downloadRelease(opts('1.5.0'));
  assert.equal(wrongKey.ok, false);
  assert.ok(!wrongKey.ok && wrongKey.refused);
  assert.match(!wrongKey.ok ? wrongKey.reason : '', /manifest signed by unknown key/);
  assert.ok(!existsSync(join(work, 'update/1.5.0', `${releaseBinaryName('x64')}.part`)));

  const file = await publish('1.6.0', content);
  const mfile = `${file}.manifest.json`;
  const m = JSON.parse(readFileSync(mfile, 'utf8'));
  writeFileSync(mfile, JSON.stringify({ ...m, size: m.size + 1 }));
  const altered = await downloadRelease(opts('1.6.0'));
  assert.deepEqual(altered, { ok: false, refused: true, reason: 'manifest signature invalid' });
});

test('killed between download and verification: the complete .part is verified, not fetched again', async () => {
  await publish('1.7.0', content);
  const dir = join(work, 'update/1.7.0');
  mkdirSync(dir, { recursive: true });
  // What a SIGKILL right after the last byte leaves: the whole file under its .part name, no budget record.
  writeFileSync(join(dir, `${releaseBinaryName('x64')}.part`), content);
  const res = await downloadRelease(opts('1.7.0'));
  assert.ok(res.ok, JSON.stringify(res));
  assert.deepEqual(readFileSync(res.file), content);
  const used = JSON.parse(readFileSync(join(dir, 'progress.json'), 'utf8')).used;
  assert.ok(used < 4096, `only the manifest was fetched, ${used} bytes`);
});

test('over HTTPS (collector `http.tls`): downloaded when the CA is pinned; refused by a client with another CA or none', async () => {
  const certs = makeTestCerts(mkdtempSync(join(work, 'certs-')), { key: 'ec', otherCa: true });
  const tls = await startHarness({
    agents: ['gw-1'],
    httpExtra: `tls: { cert: ${certs.p('server.pem')}, key: ${certs.p('server.key')} }`,
    yaml: `artifacts: { dir: ${releases} }`,
  });
  try {
    assert.match(tls.http, /^https:\/\/127\.0\.0\.1:\d+$/);
    await publish('4.0.0', content);
    const o = (ca: Buffer | undefined, dir: string) =>
      opts('4.0.0', { url: tls.http, password: tls.secrets['gw-1'], ca, dir: join(work, dir) });
    const wrong = await downloadRelease(o(readFileSync(certs.p('other-ca.pem')), 'update-other-ca'));
    assert.equal(wrong.ok, false);
    assert.ok(!wrong.ok && !wrong.refused, 'a TLS failure is retried later, not a refused release');
    assert.match(!wrong.ok ? wrong.reason : '', /certificate/);
    const none = await downloadRelease(o(undefined, 'update-no-ca')); // the system CAs do not know ours
    assert.equal(none.ok, false);
    const got = await downloadRelease(o(readFileSync(certs.p('ca.pem')), 'update-https'));
    assert.ok(got.ok, got.ok ? '' : got.reason);
    assert.deepEqual(readFileSync(got.file), content);
    // The listener speaks only TLS: plain HTTP on its port gets no answer.
    await assert.rejects(fetch(tls.http.replace('https:', 'http:') + '/healthz'));
  } finally {
    await tls.stop();
  }
});
