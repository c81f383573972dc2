// Smoke test of the test bed's Kafka (KRaft, scripts/services.sh) with the client the collector uses:
// kafkajs idempotent producer (acks -1) → consumer round trip with keys and headers, then the same
// records read by kcat, a different client (librdkafka), from the other side.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { type Consumer, Kafka, logLevel, type Producer } from 'kafkajs';
import { createTopic, services, uniqueName } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const records = [
  { key: 'gw-001/s1', value: '{"n":1}', id: 'id-1' },
  { key: 'gw-001/s2', value: '{"n":2}', id: 'id-2' },
  { key: 'gw-002/s1', value: '{"n":3,"text":"grüße"}', id: 'id-3' },
];

test('kafkajs idempotent producer → consumer round trip, and kcat reads the same records', async () => {
  const topic = await createTopic('edgeflow.smoke');
  const kafka = new Kafka({
    clientId: 'edgeflow-smoke',
    brokers: services().kafka.brokers,
    logLevel: logLevel.ERROR,
  });

  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const meta = await producer.send({
    topic,
    acks: -1,
    messages: records.map((r) => ({ key: r.key, value: r.value, headers: { 'edgeflow-id': r.id } })),
  });
  assert.equal(meta.length, 1);
  assert.equal(meta[0]?.errorCode, 0);
  assert.equal(meta[0]?.baseOffset, '0');

  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('edgeflow-smoke'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  cleanups.push(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: { key: string; value: string; id: string; offset: string }[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      got.push({
        key: message.key?.toString() ?? '',
        value: message.value?.toString() ?? '',
        id: message.headers?.['edgeflow-id']?.toString() ?? '',
        offset: message.offset,
      });
    },
  });
  await waitFor('3 records consumed', () => got.length >= records.length, { timeoutMs: 30_000 });
  assert.deepEqual(
    got,
    records.map((r, i) => ({ ...r, offset: String(i) })),
  );

  // The other side: librdkafka's kcat, key|value|headers per record, exits at the end of the partition.
  const { stdout } = await run(
    'kcat',
    [
      '-C',
      '-b',
      services().kafka.brokers.join(','),
      '-t',
      topic,
      '-e',
      '-o',
      'beginning',
      '-q',
      '-f',
      '%k|%s|%h\\n',
    ],
    { timeout: 30_000 },
  );
  assert.deepEqual(
    stdout.trimEnd().split('\n'),
    records.map((r) => `${r.key}|${r.value}|edgeflow-id=${r.id}`),
  );
});

test('the test bed refuses to auto-create topics (producers must use created topics)', async () => {
  const kafka = new Kafka({
    clientId: 'edgeflow-smoke',
    brokers: services().kafka.brokers,
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 0 } });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  await assert.rejects(
    producer.send({ topic: uniqueName('edgeflow.missing'), messages: [{ value: 'x' }], timeout: 5_000 }),
    (e: Error) =>
      /UNKNOWN_TOPIC_OR_PARTITION|does not host this topic-partition|not present in metadata/i.test(
        `${e.name} ${e.message}`,
      ),
  );
});
