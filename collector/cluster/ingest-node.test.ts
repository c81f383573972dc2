// An ingest node over a scriptable producer (log.ts IngestProducer): the PUBACK waits for Kafka's
// acknowledgement, a refused produce gets no PUBACK (the connection closes, the agent re-sends), and
// publishes arriving during a produce go out together in the next one. Real broker, real MQTT client;
// the Kafka side for real is in test/cluster/cluster.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import mqtt from 'mqtt';
import { parseConfigText } from '../../shared/config-file.ts';
import { addAgent } from '../../shared/credentials.ts';
import { nullLogger } from '../../shared/log.ts';
import { collectorConfigSchema } from '../config.ts';
import { batch, gz, summary } from '../test-support/fixtures.ts';
import { FAST_SCRYPT } from '../test-support/harness.ts';
import { buildIngestNode } from './ingest-node.ts';
import type { IngestProducer, LogRecord } from './log.ts';
import { decodeIngestRecord } from './record.ts';

/** Each send waits until the test settles it. */
class GatedProducer implements IngestProducer {
  sends: { records: readonly LogRecord[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  async start(): Promise<void> {}
  send(records: readonly LogRecord[]): Promise<void> {
    return new Promise((resolve, reject) => this.sends.push({ records, resolve, reject }));
  }
  async close(): Promise<void> {}
}

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** `mqttExtra`: more `mqtt:` keys, e.g. `maxBatchItems: 3`. */
async function node(mqttExtra = '') {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-ingest-node-'));
  const credentials = join(dir, 'agents.json');
  const secrets: Record<string, string> = {};
  for (const a of ['gw-1', 'gw-2']) secrets[a] = (await addAgent(credentials, a, FAST_SCRYPT)).secret;
  const cfg = parseConfigText(
    `collector: { id: ingest-t, dataDir: ${dir}, mode: cluster }
mqtt: { credentials: ${credentials}, listen: [tcp://127.0.0.1:0]${mqttExtra ? `, ${mqttExtra}` : ''} }
kafka: { brokers: ['127.0.0.1:1'] }
http: { listen: 127.0.0.1:0 }
`,
    collectorConfigSchema,
  );
  if (!cfg.ok) throw new Error(cfg.problems.join('\n'));
  const producer = new GatedProducer();
  const n = buildIngestNode(cfg.config, { log: nullLogger(), producer });
  const r = await n.start();
  cleanups.push(() => n.stop());
  const connect = async (agent: string) => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${r.mqtt[0]!.port}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      username: agent,
      password: secrets[agent]!,
    });
    cleanups.push(() => c.endAsync(true));
    return c;
  };
  return { producer, connect };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not reached in 4 s');
};

test('PUBACK only after the ingest topic acknowledged; the record is keyed by agent and carries the items', async () => {
  const { producer, connect } = await node();
  const c = await connect('gw-1');
  let acked = false;
  const s = summary('gw-1', 'd1', 0);
  const pub = c.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [s], 'b1'), { qos: 1 }).then(() => {
    acked = true;
  });
  await until(() => producer.sends.length === 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(acked, false, 'no PUBACK while Kafka has not acknowledged');
  const [rec] = producer.sends[0]!.records;
  assert.equal(rec!.key, 'gw-1');
  const d = decodeIngestRecord(rec!.value, 0);
  assert.deepEqual(
    d.items.map((i) => i.item.itemId),
    [s.id],
  );
  producer.sends[0]!.resolve();
  await pub;
  assert.equal(acked, true);
});

test('a refused produce gets no PUBACK: the connection closes so the agent re-sends', async () => {
  const { producer, connect } = await node();
  const c = await connect('gw-1');
  let acked = false;
  c.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [summary('gw-1', 'd1', 0)], 'b1'), {
    qos: 1,
  }).then(
    () => {
      acked = true;
    },
    () => {},
  );
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  await until(() => producer.sends.length === 1);
  producer.sends[0]!.reject(new Error('NOT_ENOUGH_REPLICAS'));
  await closed;
  assert.equal(acked, false);
});

test('publishes that arrive during a produce go out together in the next one', async () => {
  const { producer, connect } = await node();
  const [c1, c2] = await Promise.all([connect('gw-1'), connect('gw-2')]);
  const first = c1.publishAsync(
    'edgeflow/v1/gw-1/summaries',
    batch('gw-1', [summary('gw-1', 'd1', 0)], 'a'),
    { qos: 1 },
  );
  await until(() => producer.sends.length === 1);
  const more = [
    c1.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [summary('gw-1', 'd1', 10_000)], 'b'), {
      qos: 1,
    }),
    c2.publishAsync('edgeflow/v1/gw-2/summaries', batch('gw-2', [summary('gw-2', 'd1', 0)], 'c'), { qos: 1 }),
  ];
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(producer.sends.length, 1, 'one request in flight');
  producer.sends[0]!.resolve();
  await first;
  await until(() => producer.sends.length === 2);
  assert.deepEqual(producer.sends[1]!.records.map((r) => r.key).sort(), ['gw-1', 'gw-2']);
  producer.sends[1]!.resolve();
  await Promise.all(more);
});

test('the single-node bounds on hostile input apply (issue 12): too many items, a gzip bomb', async () => {
  const { producer, connect } = await node('maxBatchItems: 3, maxBatchBytes: 64KB');
  const c = await connect('gw-1');
  const items = [0, 10_000, 20_000, 30_000].map((t) => summary('gw-1', 'd1', t));
  const many = c.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', items, 'b1'), { qos: 1 });
  await until(() => producer.sends.length === 1);
  producer.sends[0]!.resolve();
  await many; // dead-lettered, so acknowledged: the agent does not re-send it forever
  const bomb = gz(Buffer.alloc(1024 * 1024, 0x20)); // 1 MB of spaces, ~1 KB gzipped
  const inflated = c.publishAsync('edgeflow/v1/gw-1/summaries', bomb, { qos: 1 });
  await until(() => producer.sends.length === 2);
  producer.sends[1]!.resolve();
  await inflated;
  const errors = producer.sends.map((s) => {
    const d = decodeIngestRecord(s.records[0]!.value, 0);
    assert.equal(d.items.length, 1, 'one dead letter for the whole payload');
    assert.equal(d.items[0]!.item.kind, 'deadletter');
    return d.items[0]!.item.error ?? '';
  });
  assert.match(errors[0]!, /^too_many_items: /);
  assert.match(errors[1]!, /^too_large: /);
});
