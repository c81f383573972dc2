// TLS listeners: server certificate, and requireClientCert where the agent id is the certificate's CN.
// Certificates are made with openssl in a temp dir (a throwaway CA, a server cert for 127.0.0.1, and
// client certs for gw-1 and gw-2).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { makeTestCerts } from '../../test/helpers/certs.ts';
import { batch, summary } from '../test-support/fixtures.ts';
import { type Harness, startHarness } from '../test-support/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-tls-'));
const p = (f: string) => join(dir, f);

function makeCerts() {
  makeTestCerts(dir, {
    clients: [
      { file: 'gw1', cn: 'gw-1' },
      { file: 'gw2', cn: 'gw-2' },
    ],
  });
}

let h: Harness;
let tlsPort: number;
let wssPort: number;
before(async () => {
  makeCerts();
  h = await startHarness({
    mqttExtra: `listen: [tcp://127.0.0.1:0, tls://127.0.0.1:0, wss://127.0.0.1:0], tls: { cert: ${p('server.pem')}, key: ${p('server.key')}, ca: ${p('ca.pem')}, requireClientCert: true }`,
  });
  tlsPort = h.ports[1]!;
  wssPort = h.ports[2]!;
});
after(async () => {
  await h?.stop();
});

const tlsOpts = (client?: string) => ({
  protocolVersion: 4 as const,
  reconnectPeriod: 0,
  connectTimeout: 5000,
  ca: readFileSync(p('ca.pem')),
  ...(client ? { cert: readFileSync(p(`${client}.pem`)), key: readFileSync(p(`${client}.key`)) } : {}),
});

test('client certificate: the agent id is the CN, no password needed; ACLs follow the CN', async () => {
  const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, tlsOpts('gw1'));
  try {
    await c.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [summary('gw-1', 'tls', 0)]), {
      qos: 1,
    });
    assert.equal(await h.metric('edgeflow_collector_batches_total'), 1);
    c.on('error', () => {});
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('edgeflow/v1/gw-2/summaries', 'x', { qos: 1 });
    await closed;
    assert.equal(await h.metric('edgeflow_collector_rejected_total', { reason: 'publish_acl' }), 1);
  } finally {
    await c.endAsync(true);
  }
});

test('a username that differs from the certificate CN is refused', async () => {
  await assert.rejects(
    mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
      ...tlsOpts('gw2'),
      username: 'gw-1',
      password: h.secrets['gw-1']!,
    }),
    /Not authorized/i,
  );
  assert.equal(await h.metric('edgeflow_collector_rejected_total', { reason: 'cert_mismatch' }), 1);
});

test('requireClientCert: a TLS client without a certificate does not get in', async () => {
  await assert.rejects(
    mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
      ...tlsOpts(),
      username: 'gw-1',
      password: h.secrets['gw-1']!,
    }),
  );
  assert.ok((await h.metric('edgeflow_collector_rejected_total', { reason: 'protocol' })) >= 1);
});

/** openssl s_client (an independent TLS client) against the tls:// listener; resolves with its output. */
function sClient(args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-CAfile', p('ca.pem'), ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) => resolve({ ok: !err, out: `${stdout}${stderr}` }),
    );
    child.stdin?.end(); // no input: s_client closes after the handshake
  });
}

test('TLS 1.2 offers forward-secret suites only: a client offering only RSA key exchange is refused (openssl s_client)', async () => {
  const cert = ['-cert', p('gw1.pem'), '-key', p('gw1.key')];
  const rsaOnly = await sClient([
    '-tls1_2',
    '-cipher',
    'AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA',
    ...cert,
  ]);
  assert.equal(rsaOnly.ok, false, rsaOnly.out);
  assert.match(rsaOnly.out, /handshake failure|no shared cipher|alert/i);
  const ecdhe = await sClient(['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256', ...cert]);
  assert.match(ecdhe.out, /Cipher is ECDHE-RSA-AES128-GCM-SHA256/, ecdhe.out);
});

test('wss:// applies requireClientCert too: no certificate, no connection; with one, the CN is the agent id', async () => {
  await assert.rejects(
    mqtt.connectAsync(`wss://127.0.0.1:${wssPort}`, {
      ...tlsOpts(),
      username: 'gw-1',
      password: h.secrets['gw-1']!,
    }),
  );
  const c = await mqtt.connectAsync(`wss://127.0.0.1:${wssPort}`, tlsOpts('gw1'));
  try {
    const before = await h.metric('edgeflow_collector_batches_total');
    await c.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [summary('gw-1', 'wss', 0)]), {
      qos: 1,
    });
    assert.equal(await h.metric('edgeflow_collector_batches_total'), before + 1);
  } finally {
    await c.endAsync(true);
  }
});
