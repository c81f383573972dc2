// kafkajs implementation of the cluster-mode Kafka interfaces (log.ts). kafkajs supports idempotent and
// transactional producers and `sendOffsets`, but not KIP-447 (group-metadata fencing) nor manual
// partition assignment; hence a transactional id per input partition (zombie fencing) and a throwaway
// consumer group that pauses the partitions it does not restore (docs/design/cluster.md).
import { randomUUID } from 'node:crypto';
import {
  type Admin,
  type Consumer,
  Kafka,
  type KafkaConfig as KafkaJsConfig,
  logLevel,
  type Message,
  type Producer,
} from 'kafkajs';
import { readSecretFile } from '../../shared/config-file.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import { classifyKafkaJsError, memoizedDefaultPartitioner } from '../sinks/kafka-kafkajs.ts';
import type { ClusterConfig } from './config.ts';
import {
  CHANGELOG_MARKER_KEY,
  type ChangelogOp,
  changelogTopic,
  FencedError,
  type ForwarderLog,
  type GroupConsumer,
  type GroupHandlers,
  type IngestProducer,
  type LogRecord,
  type PartitionTx,
} from './log.ts';
import type { OutRecord } from './output.ts';

export function kafkaClient(cfg: KafkaConfig, clientId: string, log: Logger, requestTimeout = 10_000): Kafka {
  const conf: KafkaJsConfig = {
    clientId,
    brokers: cfg.brokers,
    ssl: cfg.ssl,
    connectionTimeout: 3000,
    requestTimeout,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        // kafkajs logs rebalances and connection errors at ERROR while they are retried: WARN by our rules.
        // CONCURRENT_TRANSACTIONS (a transaction begun while the previous commit's markers are still
        // being written) is retried by kafkajs within ~100 ms on every busy partition: DEBUG.
        const benign = /concurrent operation on the same transaction/.test(
          `${message} ${String(rest.error)}`,
        );
        if (level <= logLevel.WARN && !benign) log.warn({ kafkajs: rest }, `kafkajs: ${message}`);
        else log.debug({ kafkajs: rest }, `kafkajs: ${message}`);
      },
  };
  if (cfg.sasl) {
    conf.sasl = {
      mechanism: cfg.sasl.mechanism,
      username: cfg.sasl.username,
      password: cfg.sasl.password ?? readSecretFile(cfg.sasl.passwordFile!),
    } as KafkaJsConfig['sasl'];
  }
  return new Kafka(conf);
}

interface TopicSpec {
  topic: string;
  partitions: number;
  configEntries?: { name: string; value: string }[];
}

/** Creates the missing topics (or, with createTopics: false, fails naming them). */
async function ensureTopics(
  admin: Admin,
  specs: readonly TopicSpec[],
  cfg: KafkaConfig,
  rf: number,
  log: Logger,
): Promise<void> {
  const have = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !have.has(s.topic));
  if (missing.length === 0) return;
  if (!cfg.createTopics) {
    throw new EdgeflowError(
      'SINK_UNAVAILABLE',
      `kafka topics missing: ${missing.map((m) => m.topic).join(', ')} (create them or set kafka.createTopics: true)`,
      { retriable: false },
    );
  }
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: rf,
        ...(s.configEntries ? { configEntries: s.configEntries } : {}),
      })),
    });
  } catch (e) {
    // Another node created them at the same moment: fine if they exist now.
    const now = new Set(await admin.listTopics());
    if (missing.some((m) => !now.has(m.topic))) throw e;
  }
  log.info({ topics: missing.map((m) => m.topic) }, 'created kafka topics');
}

function ingestTopicSpec(c: ClusterConfig): TopicSpec {
  // An uplink batch may inflate to several MiB; records are split at 900 KiB (record.ts) but leave room.
  return {
    topic: c.ingestTopic,
    partitions: c.partitions,
    configEntries: [{ name: 'max.message.bytes', value: String(8 * 1024 * 1024) }],
  };
}

export class KafkajsIngestProducer implements IngestProducer {
  private readonly kafka: Kafka;
  private producer: Producer | null = null;

  constructor(
    private readonly cfg: KafkaConfig,
    private readonly cluster: ClusterConfig,
    private readonly log: Logger,
  ) {
    this.kafka = kafkaClient(cfg, `${cfg.clientId}-ingest`, log, cluster.produceTimeout);
  }

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(
        admin,
        [ingestTopicSpec(this.cluster)],
        this.cfg,
        this.cluster.replicationFactor,
        this.log,
      );
    } finally {
      await admin.disconnect();
    }
    this.producer = this.kafka.producer({
      idempotent: true, // the broker drops the producer's own retries (KIP-98)
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: memoizedDefaultPartitioner, // murmur2 of the agent id, as the Java client
    });
    await this.producer.connect();
  }

  async send(records: readonly LogRecord[]): Promise<void> {
    if (!this.producer) throw new EdgeflowError('SINK_UNAVAILABLE', 'ingest producer not started');
    await this.producer.send({
      topic: this.cluster.ingestTopic,
      acks: -1,
      timeout: this.cluster.produceTimeout,
      messages: records.map((r) => ({ key: r.key, value: r.value, headers: r.headers ?? {} })),
    });
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
  }
}

class KafkajsGroupConsumer implements GroupConsumer {
  private readonly consumer: Consumer;

  constructor(
    kafka: Kafka,
    private readonly groupId: string,
    private readonly topic: string,
    private readonly log: Logger,
    sessionTimeout: number,
  ) {
    this.consumer = kafka.consumer({
      groupId,
      readUncommitted: false,
      sessionTimeout,
      heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 5)),
      allowAutoTopicCreation: false,
      maxBytesPerPartition: 4 * 1024 * 1024,
    });
  }

  async run(h: GroupHandlers): Promise<void> {
    const c = this.consumer;
    c.on(c.events.GROUP_JOIN, (e) => {
      const parts = e.payload.memberAssignment[this.topic] ?? [];
      this.log.info({ group: this.groupId, partitions: parts }, 'partitions assigned');
      h.assigned(parts);
    });
    await c.connect();
    await c.subscribe({ topic: this.topic, fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const last = batch.messages[batch.messages.length - 1]!;
        const ok = await h.batch(
          {
            partition: batch.partition,
            next: (BigInt(last.offset) + 1n).toString(),
            records: batch.messages.map((m) => ({
              offset: m.offset,
              key: m.key?.toString('utf8') ?? null,
              value: m.value,
              timestamp: Number(m.timestamp),
            })),
          },
          heartbeat,
        );
        if (ok) resolveOffset(last.offset);
        else {
          // Not processed: start this partition again from its first record on the next fetch.
          c.seek({ topic: this.topic, partition: batch.partition, offset: batch.messages[0]!.offset });
        }
      },
    });
  }

  async commit(partition: number, next: string): Promise<void> {
    await this.consumer.commitOffsets([{ topic: this.topic, partition, offset: next }]);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
  }
}

const FENCED = new Set([
  'producer_fenced',
  'invalid_producer_epoch',
  'transactional_id_authorization_failed',
]);

class KafkajsPartitionTx implements PartitionTx {
  constructor(
    private readonly producer: Producer,
    private readonly partition: number,
    private readonly ingestTopic: string,
    private readonly changelog: string,
    private readonly groupId: string,
  ) {}

  async commit(
    out: readonly OutRecord[],
    changelog: readonly ChangelogOp[],
    next: string,
    beforeCommit?: () => Promise<void>,
  ): Promise<void> {
    let tx: Awaited<ReturnType<Producer['transaction']>> | null = null;
    try {
      tx = await this.producer.transaction();
      const byTopic = new Map<string, Message[]>();
      for (const r of out) {
        let l = byTopic.get(r.topic);
        if (!l) {
          l = [];
          byTopic.set(r.topic, l);
        }
        l.push({ key: r.key, value: r.value, headers: r.headers });
      }
      const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      if (changelog.length > 0) {
        topicMessages.push({
          topic: this.changelog,
          messages: changelog.map((op) => ({ key: op.key, value: op.value, partition: this.partition })),
        });
      }
      if (topicMessages.length > 0) await tx.sendBatch({ acks: -1, topicMessages });
      await tx.sendOffsets({
        consumerGroupId: this.groupId,
        topics: [{ topic: this.ingestTopic, partitions: [{ partition: this.partition, offset: next }] }],
      });
      if (beforeCommit) await beforeCommit();
      await tx.commit();
    } catch (e) {
      if (tx?.isActive()) await tx.abort().catch(() => {});
      const c = classifyKafkaJsError(e);
      if (FENCED.has(c.code)) throw new FencedError(`partition ${this.partition}: ${c.message}`);
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => {});
  }
}

export class KafkajsForwarderLog implements ForwarderLog {
  private readonly kafka: Kafka;
  private readonly changelog: string;

  constructor(
    private readonly cfg: KafkaConfig,
    private readonly cluster: ClusterConfig,
    private readonly groupId: string,
    private readonly log: Logger,
  ) {
    this.kafka = kafkaClient(cfg, `${cfg.clientId}-forward`, log);
    this.changelog = changelogTopic(cluster.ingestTopic);
  }

  async ensureTopics(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const outputs = [...new Set(Object.values(this.cfg.topics))].map((topic) => ({ topic, partitions: 3 }));
      await ensureTopics(
        admin,
        [
          ingestTopicSpec(this.cluster),
          {
            // Co-partitioned with the ingest topic (partition p holds the dedup state of input p);
            // compacted: a key is (agent, dedup key), evicted keys get tombstones (forwarder.ts).
            topic: this.changelog,
            partitions: this.cluster.partitions,
            configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
          },
          ...outputs,
        ],
        this.cfg,
        this.cluster.replicationFactor,
        this.log,
      );
      const meta = await admin.fetchTopicMetadata({ topics: [this.cluster.ingestTopic, this.changelog] });
      const counts = meta.topics.map((t) => t.partitions.length);
      if (counts[0] !== counts[1]) {
        throw new EdgeflowError(
          'CONFIG_INVALID',
          `${this.changelog} has ${counts[1]} partitions, ${this.cluster.ingestTopic} ${counts[0]}: they must match`,
          { retriable: false },
        );
      }
    } finally {
      await admin.disconnect();
    }
  }

  consumer(groupId: string): GroupConsumer {
    return new KafkajsGroupConsumer(
      this.kafka,
      groupId,
      this.cluster.ingestTopic,
      this.log,
      this.cluster.sessionTimeout,
    );
  }

  async openPartition(partition: number): Promise<{ tx: PartitionTx; marker: string }> {
    const producer = this.kafka.producer({
      // One transactional id per input partition: whoever owns partition p next fences the previous
      // owner (kafkajs has no KIP-447 group-metadata fencing). Kafka aborts the zombie's open transaction.
      transactionalId: `${this.groupId}.${this.cluster.ingestTopic}.${partition}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      allowAutoTopicCreation: false,
      createPartitioner: memoizedDefaultPartitioner,
    });
    await producer.connect(); // InitProducerId: bumps the epoch (fencing) and aborts a pending transaction
    const tx = new KafkajsPartitionTx(
      producer,
      partition,
      this.cluster.ingestTopic,
      this.changelog,
      this.groupId,
    );
    const marker = randomUUID();
    try {
      const t = await producer.transaction();
      await t.send({
        topic: this.changelog,
        acks: -1,
        messages: [{ key: CHANGELOG_MARKER_KEY, value: marker, partition }],
      });
      await t.commit();
    } catch (e) {
      await producer.disconnect().catch(() => {});
      throw e;
    }
    return { tx, marker };
  }

  async readChangelog(
    markers: ReadonlyMap<number, string>,
    apply: (partition: number, key: string, value: string | null) => void,
    keepAlive: () => Promise<void>,
  ): Promise<void> {
    if (markers.size === 0) return;
    const groupId = `${this.groupId}.restore.${randomUUID()}`;
    const consumer = this.kafka.consumer({
      groupId,
      readUncommitted: false,
      maxBytesPerPartition: 8 * 1024 * 1024,
    });
    const pending = new Set(markers.keys());
    let done!: () => void;
    let fail!: (e: Error) => void;
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve;
      fail = reject;
    });
    consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
    const tick = setInterval(() => void keepAlive().catch(() => {}), 2000);
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.changelog, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const p = batch.partition;
          if (!pending.has(p)) {
            consumer.pause([{ topic: this.changelog, partitions: [p] }]);
            return;
          }
          for (const m of batch.messages) {
            const key = m.key?.toString('utf8') ?? '';
            const value = m.value === null ? null : m.value.toString('utf8');
            if (key === CHANGELOG_MARKER_KEY) {
              if (value === markers.get(p)) {
                pending.delete(p);
                consumer.pause([{ topic: this.changelog, partitions: [p] }]);
                if (pending.size === 0) done();
                return;
              }
              continue;
            }
            apply(p, key, value);
          }
        },
      });
      await finished;
    } finally {
      clearInterval(tick);
      await consumer.disconnect().catch(() => {});
      const admin = this.kafka.admin();
      await admin
        .connect()
        .then(() => admin.deleteGroups([groupId]))
        .catch(() => {})
        .finally(() => admin.disconnect().catch(() => {}));
    }
  }

  async close(): Promise<void> {}
}
