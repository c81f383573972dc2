// KafkaForwarder's policy over an in-memory ForwarderLog (log.ts): the same guarantees the kafkajs
// implementation gives (one commit = outputs + changelog + offset, opening a partition fences the
// previous owner), so dedup, restore, failed commits and fencing can be driven step by step. The real
// thing, with Kafka and killed processes, is test/cluster/cluster.test.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { nullLogger } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import { ingestPublish } from '../ingest/ingest.ts';
import { batch, summary } from '../test-support/fixtures.ts';
import { CLUSTER_DEFAULTS } from './config.ts';
import { KafkaForwarder } from './forwarder.ts';
import {
  CHANGELOG_MARKER_KEY,
  type ChangelogOp,
  FencedError,
  type ForwarderLog,
  type GroupConsumer,
  type GroupHandlers,
  type InputBatch,
  type PartitionTx,
} from './log.ts';
import { createForwarderMetrics } from './metrics.ts';
import type { OutRecord } from './output.ts';
import { encodeIngestRecords } from './record.ts';

const TOPICS: KafkaConfig['topics'] = {
  summaries: 's',
  alerts: 'a',
  status: 'st',
  late: 'l',
  deadletter: 'dl',
};
const KAFKA: KafkaConfig = {
  brokers: ['x:1'],
  clientId: 'c',
  topics: TOPICS,
  createTopics: true,
  client: 'kafkajs',
  ssl: false,
};

/** One in-memory "Kafka": committed outputs, changelog partitions, offsets, producer epochs. */
class MemoryKafka {
  outputs: OutRecord[] = [];
  changelog = new Map<number, ChangelogOp[]>();
  offsets = new Map<number, string>();
  epochs = new Map<number, number>();
  failNextCommit = false;
  /** A commit carrying this edgeflow-id fails as Kafka refuses an oversized record: for good. */
  refuseId: string | null = null;
}

class MemoryLog implements ForwarderLog {
  handlers: GroupHandlers | null = null;
  constructor(private readonly k: MemoryKafka) {}
  async ensureTopics(): Promise<void> {}
  consumer(): GroupConsumer {
    return {
      run: async (h) => {
        this.handlers = h;
      },
      commit: async () => {},
      stop: async () => {},
    };
  }
  async openPartition(p: number): Promise<{ tx: PartitionTx; marker: string }> {
    const k = this.k;
    const epoch = (k.epochs.get(p) ?? 0) + 1;
    k.epochs.set(p, epoch);
    const marker = randomUUID();
    const log = k.changelog.get(p) ?? [];
    k.changelog.set(p, log);
    log.push({ key: CHANGELOG_MARKER_KEY, value: marker });
    const tx: PartitionTx = {
      async commit(out, changelog, next) {
        if (k.epochs.get(p) !== epoch) throw new FencedError(`partition ${p}: fenced`);
        if (k.refuseId !== null && out.some((o) => o.headers['edgeflow-id'] === k.refuseId)) {
          throw Object.assign(new Error('The request included a message larger than the max message size'), {
            type: 'MESSAGE_TOO_LARGE',
          });
        }
        if (k.failNextCommit) {
          k.failNextCommit = false;
          throw new Error('request timed out');
        }
        k.outputs.push(...out);
        log.push(...changelog);
        k.offsets.set(p, next);
      },
      async close() {},
    };
    return { tx, marker };
  }
  async readChangelog(
    markers: ReadonlyMap<number, string>,
    apply: (p: number, key: string, value: string | null) => void,
  ): Promise<void> {
    for (const [p, marker] of markers) {
      for (const op of this.k.changelog.get(p) ?? []) {
        if (op.key === CHANGELOG_MARKER_KEY) {
          if (op.value === marker) break;
          continue;
        }
        apply(p, op.key, op.value);
      }
    }
  }
  async close(): Promise<void> {}
}

async function forwarder(k: MemoryKafka) {
  const io = new MemoryLog(k);
  const f = new KafkaForwarder(
    KAFKA,
    { ...CLUSTER_DEFAULTS, dedupPerAgent: 100 },
    io,
    createForwarderMetrics(new Registry(), 'kafka'),
    nullLogger(),
    { retryDelayMs: 1 },
  );
  await f.start();
  return { f, h: io.handlers! };
}

let offset = 0;
async function record(agent: string, starts: number[]): Promise<InputBatch['records'][number]> {
  const items = starts.map((s) => summary(agent, 'd1', s));
  const r = await ingestPublish(
    agent,
    'summaries',
    `edgeflow/v1/${agent}/summaries`,
    batch(agent, items, `b${offset}`),
    {
      maxInflatedBytes: 1 << 20,
      maxItems: 10_000,
    },
  );
  return {
    offset: String(offset++),
    key: agent,
    value: encodeIngestRecords(agent, 'n', r.entries)[0]!,
    timestamp: 1,
  };
}
const inBatch = (p: number, records: InputBatch['records']): InputBatch => ({
  partition: p,
  records,
  next: String(Number(records.at(-1)!.offset) + 1),
});
const keepAlive = async () => {};
const ids = (k: MemoryKafka) => k.outputs.map((o) => o.headers['edgeflow-id']);

test('re-sends are dropped within a batch and across batches; offsets commit with the output', async () => {
  const k = new MemoryKafka();
  const { h } = await forwarder(k);
  h.assigned([0]);
  assert.equal(
    await h.batch(inBatch(0, [await record('gw-1', [0, 10_000]), await record('gw-1', [10_000])]), keepAlive),
    true,
  );
  assert.equal(
    await h.batch(inBatch(0, [await record('gw-1', [0, 20_000]), await record('gw-2', [0])]), keepAlive),
    true,
  );
  assert.equal(k.outputs.length, 4, 'gw-1 ×3 distinct + gw-2 ×1');
  assert.equal(new Set(ids(k)).size, 4);
  assert.equal(k.offsets.get(0), String(offset));
});

test('a failed commit rebuilds the partition from the changelog; the retried batch is forwarded once', async () => {
  const k = new MemoryKafka();
  const { h } = await forwarder(k);
  h.assigned([0]);
  assert.equal(await h.batch(inBatch(0, [await record('gw-1', [0])]), keepAlive), true);
  const again = inBatch(0, [await record('gw-1', [0, 10_000])]);
  k.failNextCommit = true;
  assert.equal(await h.batch(again, keepAlive), false, 'not processed: delivered again');
  assert.equal(await h.batch(again, keepAlive), true);
  assert.equal(
    k.outputs.length,
    2,
    'the re-sent item is still known after the rebuild, the new one went once',
  );
  assert.equal(k.epochs.get(0), 2, 'the partition was opened again');
});

test('a new owner fences the old one and restores its state; the fenced one waits for its rebalance', async () => {
  const k = new MemoryKafka();
  const a = await forwarder(k);
  a.h.assigned([0, 1]);
  assert.equal(await a.h.batch(inBatch(0, [await record('gw-1', [0, 10_000])]), keepAlive), true);
  // B is given partition 0 (A has not noticed the rebalance yet).
  const b = await forwarder(k);
  b.h.assigned([0]);
  const resend = inBatch(0, [await record('gw-1', [10_000, 20_000])]);
  assert.equal(await a.h.batch(resend, keepAlive), false, 'A is fenced');
  assert.equal(await b.h.batch(resend, keepAlive), true);
  assert.deepEqual(ids(k).length, 3, 'B knew 10_000 from the changelog: only 20_000 is new');
  assert.equal(k.epochs.get(0), 2, 'A did not re-open partition 0 at once (which would fence B back)');
  a.h.assigned([1]); // A's rebalance: partition 0 is B's
  assert.equal(await a.h.batch(resend, keepAlive), false);
  assert.equal(k.epochs.get(0), 2);
  // A's other partition is unaffected.
  assert.equal(await a.h.batch(inBatch(1, [await record('gw-3', [0])]), keepAlive), true);
  assert.equal(k.outputs.length, 4);
});

test('a record Kafka refuses for good is found one by one and dead-lettered as it is; the rest goes through', async () => {
  const k = new MemoryKafka();
  const { h } = await forwarder(k);
  h.assigned([0]);
  const good1 = await record('gw-1', [0]);
  const bad = await record('gw-1', [10_000]);
  const good2 = await record('gw-1', [20_000]);
  k.refuseId = summary('gw-1', 'd1', 10_000).id;
  const b = inBatch(0, [good1, bad, good2]);
  let tries = 0;
  while (!(await h.batch(b, keepAlive))) assert.ok(++tries < 5, 'settles within a few deliveries');
  assert.deepEqual(
    k.outputs.map((o) => o.topic),
    ['s', 'dl', 's'],
  );
  assert.deepEqual(k.outputs[1]!.value, bad.value, 'the raw ingest record');
  assert.match(k.outputs[1]!.headers['edgeflow-error'] ?? '', /message_too_large/);
  assert.equal(k.offsets.get(0), b.next);
});
