// The Kafka sink's default client: @platformatic/kafka (issue 18). Why it replaced kafkajs: maintained
// (kafkajs has had no maintainer since 2023), pure JavaScript, idempotent producer, and less CPU per
// record than kafkajs, which was the largest block of the collector's profile (2.26× the records per
// CPU-second in bench/collector.ts's raw producers; BENCHMARKS.md). Needs Node >= 22.
//
// Same records as kafka-kafkajs.ts: key `{agent}/{device}`, header `edgeflow-id`, idempotent, acks all,
// one request in flight, and the partition of a key is murmur2's positive 31 bits modulo the partition
// count (the library's own default partitioner keeps all 32 bits, which would move keys: not used).
import {
  Admin,
  type MessageToProduce,
  murmur2,
  ProduceAcks,
  Producer,
  type ProducerOptions,
  type SASLMechanismValue,
  stringSerializer,
} from '@platformatic/kafka';
import { readSecretFile } from '../../shared/config-file.ts';
import type { Logger } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import {
  type KafkaClient,
  type KafkaErrorClass,
  type KafkaRecord,
  MURMUR2_POSITIVE_MASK,
  PERMANENT_KAFKA_ERRORS,
} from './kafka-client.ts';

type Message = MessageToProduce<string, Buffer, string, string>;

const SASL: Record<NonNullable<KafkaConfig['sasl']>['mechanism'], SASLMechanismValue> = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
};
/** Bounded wait for new topics' partition leaders (as kafkajs's createTopics waitForLeaders). */
const LEADER_WAIT_MS = 10_000;
const LEADER_POLL_MS = 100;

/**
 * murmur2 partitioner compatible with the Java client and kafkajs's DefaultPartitioner (the library
 * takes the result modulo the partition count), remembering each key's hash: a fleet has few keys.
 */
export function memoizedMurmur2Partitioner(): (message: Message, key: Buffer | undefined) => number {
  const memo = new Map<string, number>();
  return (message, key) => {
    const k = message.key;
    if (k === undefined || key === undefined) return 0; // every record of ours has a key
    let h = memo.get(k);
    if (h === undefined) {
      h = murmur2(key) & MURMUR2_POSITIVE_MASK;
      if (memo.size >= 100_000) memo.clear(); // bounded: a fleet with more keys pays murmur2 again
      memo.set(k, h);
    }
    return h;
  };
}

interface PltError extends Error {
  code?: string;
  apiId?: string;
  errors?: unknown[];
  cause?: unknown;
}

/** Every error in the tree: MultipleErrors (AggregateError) per broker, causes. */
function* errorTree(e: unknown, depth = 0): Generator<PltError> {
  if (!(e instanceof Error) || depth > 6) return;
  const err = e as PltError;
  yield err;
  for (const inner of err.errors ?? []) yield* errorTree(inner, depth + 1);
  if (err.cause) yield* errorTree(err.cause, depth + 1);
}

export function classifyPlatformaticError(e: unknown): KafkaErrorClass {
  let code = 'error';
  let permanent = false;
  let network = false;
  for (const err of errorTree(e)) {
    if (err.apiId && PERMANENT_KAFKA_ERRORS.has(err.apiId)) permanent = true;
    if (err.code === 'PLT_KFK_NETWORK' || err.code === 'PLT_KFK_TIMEOUT') network = true;
    // The most specific name: a broker's error id, else the library's error code.
    if (err.apiId) code = err.apiId.toLowerCase();
    else if (code === 'error' && err.code && err.code !== 'PLT_KFK_MULTIPLE')
      code = err.code.replace(/^PLT_KFK_/, '').toLowerCase();
  }
  // "metadata failed 3 times." says little: add the distinct causes (e.g. "Connection closed").
  const causes = new Set<string>();
  for (const err of errorTree(e)) if (err !== e && !err.errors?.length) causes.add(err.message);
  const head = e instanceof Error ? e.message : String(e);
  const message = causes.size > 0 ? `${head} (${[...causes].slice(0, 3).join('; ')})` : head;
  return { retriable: !permanent, code, message, disconnected: network };
}

export class PlatformaticKafkaClient implements KafkaClient {
  private readonly base: ProducerOptions<string, Buffer, string, string>;
  private producer: Producer<string, Buffer, string, string> | null = null;

  constructor(
    cfg: KafkaConfig,
    private readonly log: Logger,
    opts: { requestTimeoutMs: number },
  ) {
    this.base = {
      clientId: cfg.clientId,
      bootstrapBrokers: cfg.brokers,
      connectTimeout: 3000,
      requestTimeout: opts.requestTimeoutMs,
      timeout: opts.requestTimeoutMs,
      // Our runner owns retries (with its own backoff and metrics); the client retries only briefly.
      // (An idempotent producer given retries <= 1 would retry forever.)
      retries: 2,
      retryDelay: 250,
      autocreateTopics: false,
    };
    if (cfg.ssl) this.base.tls = {};
    if (cfg.sasl) {
      this.base.sasl = {
        mechanism: SASL[cfg.sasl.mechanism],
        username: cfg.sasl.username,
        password: cfg.sasl.password ?? readSecretFile(cfg.sasl.passwordFile!),
      };
    }
  }

  private async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = new Admin(this.base);
    try {
      return await fn(admin);
    } finally {
      await admin.close().catch(() => {});
    }
  }

  listTopics(): Promise<string[]> {
    return this.withAdmin((admin) => admin.listTopics());
  }

  async createTopics(topics: string[], numPartitions: number, replicationFactor: number): Promise<void> {
    await this.withAdmin(async (admin) => {
      await admin.createTopics({ topics, partitions: numPartitions, replicas: replicationFactor });
      const deadline = Date.now() + LEADER_WAIT_MS;
      for (;;) {
        const md = await admin.metadata({ topics, forceUpdate: true });
        const led = topics.every((t) => {
          const tm = md.topics.get(t);
          return tm !== undefined && tm.partitions.length > 0 && tm.partitions.every((p) => p.leader >= 0);
        });
        if (led) return;
        if (Date.now() > deadline) throw new Error(`kafka topics ${topics.join(', ')}: no leaders yet`);
        await new Promise((r) => setTimeout(r, LEADER_POLL_MS));
      }
    });
  }

  async connectProducer(): Promise<void> {
    this.producer ??= new Producer({
      ...this.base,
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: memoizedMurmur2Partitioner(),
      serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
    });
    await this.producer.initIdempotentProducer({});
  }

  async send(byTopic: ReadonlyMap<string, KafkaRecord[]>): Promise<void> {
    const messages: Message[] = [];
    for (const [topic, records] of byTopic)
      for (const r of records) messages.push({ topic, key: r.key, value: r.value, headers: r.headers });
    await this.producer!.send({ messages });
  }

  classify(err: unknown): KafkaErrorClass {
    return classifyPlatformaticError(err);
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = null;
    await p?.close().catch((err: unknown) => this.log.debug({ err }, 'kafka producer close failed'));
  }
}
