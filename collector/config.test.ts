import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../shared/config-file.ts';
import { collectorConfigSchema } from './config.ts';

const MIN = 'collector: { id: c1, dataDir: /tmp/x }\nmqtt: { credentials: /etc/agents.json }\n';

test('a minimal config gets the documented defaults', () => {
  const res = parseConfigText(MIN, collectorConfigSchema);
  assert.ok(res.ok, res.ok ? '' : res.problems.join('\n'));
  assert.deepEqual(res.config.mqtt.listen, [
    { url: 'tcp://0.0.0.0:1883', tls: false, websocket: false, host: '0.0.0.0', port: 1883 },
  ]);
  assert.equal(res.config.mqtt.maxPacketSize, 1024 * 1024);
  assert.equal(res.config.spool.maxBytes, 2 * 1024 ** 3);
  assert.equal(res.config.http.listen, '127.0.0.1:9465');
  assert.equal(res.config.kafka, undefined);
  assert.equal(res.config.influx, undefined);
});

test('the SPEC 2b example parses (kafka topic defaults, influx v2, sizes)', () => {
  const text = `
collector: { id: central-1, dataDir: /var/lib/edgeflow-collector }
mqtt:
  listen: [tcp://0.0.0.0:1883, tls://0.0.0.0:8883]
  tls: { cert: /etc/edgeflow/server.pem, key: /etc/edgeflow/server.key, ca: /etc/edgeflow/ca.pem, requireClientCert: false }
  credentials: /etc/edgeflow/agents.json
  maxPacketSize: 1MB
kafka:
  brokers: [127.0.0.1:9092]
  topics: { summaries: edgeflow.summaries, alerts: edgeflow.alerts, status: edgeflow.status, deadletter: edgeflow.deadletter }
  ssl: false
  sasl: { mechanism: scram-sha-512, username: edge, passwordFile: /etc/edgeflow/kafka-pw }
influx:
  url: http://127.0.0.1:8086
  api: v2
  org: plant
  bucket: edgeflow
  tokenFile: /etc/edgeflow/influx-token
spool: { maxBytes: 2GB }
http: { listen: 127.0.0.1:9465 }
`;
  const res = parseConfigText(text, collectorConfigSchema);
  assert.ok(res.ok, res.ok ? '' : res.problems.join('\n'));
  assert.equal(res.config.mqtt.listen[1]?.tls, true);
  assert.equal(res.config.kafka?.topics.late, 'edgeflow.late');
  assert.equal(res.config.influx?.api, 'v2');
});

test('every problem is reported, one `path: message` each', () => {
  const text = `
collector: { id: "bad id", dataDir: /tmp/x }
mqtt: { listen: [tcp://0.0.0.0:1883, tls://0.0.0.0:8883, ftp://x:1], credentials: /x, bogus: 1 }
influx: { url: http://x:8086, api: v1, org: a }
spool: { maxBytes: 2XB }
kafka: { brokers: [] }
extra: true
`;
  const res = parseConfigText(text, collectorConfigSchema);
  assert.equal(res.ok, false);
  if (res.ok) return;
  const has = (prefix: string) =>
    assert.ok(
      res.problems.some((p) => p.startsWith(prefix)),
      `${prefix} in\n${res.problems.join('\n')}`,
    );
  has('collector.id: ');
  has('mqtt: Unrecognized key: "bogus"');
  has('mqtt.listen.2: ');
  has('influx.db: required');
  has('influx.org: not used');
  has('spool.maxBytes: invalid size');
  has('kafka.brokers: ');
  has('(root): Unrecognized key: "extra"');
});

test('tls listeners need mqtt.tls; requireClientCert needs a ca', () => {
  const res = parseConfigText(
    'collector: { dataDir: /x }\nmqtt: { listen: [tls://0.0.0.0:8883], credentials: /x, tls: { cert: a, key: b, requireClientCert: true } }\n',
    collectorConfigSchema,
  );
  assert.equal(res.ok, false);
  if (!res.ok)
    assert.deepEqual(res.problems, [
      'mqtt.tls.ca: requireClientCert needs a ca to verify client certificates',
    ]);
  const res2 = parseConfigText(
    'collector: { dataDir: /x }\nmqtt: { listen: [tls://0.0.0.0:8883], credentials: /x }\n',
    collectorConfigSchema,
  );
  assert.equal(res2.ok, false);
  if (!res2.ok) assert.match(res2.problems[0]!, /^mqtt\.listen\.0: .*needs mqtt\.tls/);
});

test('influx v2 needs org, bucket and a token', () => {
  const res = parseConfigText(`${MIN}influx: { url: http://x:8086 }\n`, collectorConfigSchema);
  assert.equal(res.ok, false);
  if (!res.ok) {
    assert.deepEqual(res.problems.sort(), [
      'influx.bucket: required for api: v2',
      'influx.org: required for api: v2',
      'influx.tokenFile: api: v2 needs token or tokenFile',
    ]);
  }
});

test('collector/sample.yaml is valid', async () => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(new URL('./sample.yaml', import.meta.url), 'utf8');
  const res = parseConfigText(text, collectorConfigSchema);
  assert.ok(res.ok, res.ok ? '' : res.problems.join('\n'));
  assert.equal(res.config.spool.dedupRetention, 7 * 86_400_000);
});
