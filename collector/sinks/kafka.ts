// Kafka sink (SPEC.md section 4): one record per item on the topic of its kind, key `{agent}/{device}`,
// value = the item JSON with `agent`, header `edgeflow-id`. Dead letters go to the dead-letter topic with
// the raw payload and `edgeflow-error`.
//
// kafkajs, idempotent producer (acks=-1, one in-flight request, so the broker de-duplicates the
// producer's own retries). A re-send after a collector crash can still produce a second copy of a
// record; it carries the same key and `edgeflow-id`, which is what consumers de-duplicate on (SPEC 4).
// kafkajs is in maintenance mode upstream: it stays behind the `Sink` interface.
import {
  type Admin,
  type ICustomPartitioner,
  type IHeaders,
  type ISocketFactory,
  Kafka,
  type KafkaConfig as KafkaJsConfig,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
} from 'kafkajs';
import { readSecretFile } from '../../shared/config-file.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import type { SpoolItem } from '../spool/spool.ts';
import { allFailed, itemRecordJson, type Sink, type WriteResult } from './sink.ts';

export interface KafkaSinkOptions {
  /** Per request timeout (ms). */
  requestTimeoutMs?: number;
  /** Records per write. [1000] */
  batchSize?: number;
  /** Partitions for topics the collector creates. */
  numPartitions?: number;
  replicationFactor?: number;
  /** kafkajs socket factory (tests inject outages through it; STYLE.md: injected sockets). */
  socketFactory?: ISocketFactory;
}

/**
 * Kafka errors that no retry can fix: the record itself is refused. Everything else (connection loss,
 * timeouts, leader elections, even authorisation, which an operator can fix) keeps the data in the
 * spool and is retried; an unknown error is never a reason to dead-letter.
 */
const PERMANENT_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
]);

type KafkaErr = Error & { type?: string; originalError?: KafkaErr; cause?: KafkaErr };

/**
 * kafkajs wraps the last error in KafkaJSNumberOfRetriesExceeded (retriable: false) once its own short
 * retries are spent, so `retriable` cannot be used as is: classify the innermost error.
 */
export function classifyKafkaError(e: unknown): { retriable: boolean; code: string; message: string } {
  let err = e as KafkaErr;
  for (let i = 0; i < 5 && (err.originalError ?? err.cause); i++) err = (err.originalError ?? err.cause)!;
  const code = (err.type ?? err.name ?? 'error').replace(/^KafkaJS/, '').toLowerCase();
  return { retriable: !PERMANENT_TYPES.has(err.type ?? ''), code, message: (e as Error).message };
}

function kafkaLogCreator(log: Logger) {
  return () =>
    ({ level, log: entry }: { level: logLevel; log: { message: string } & Record<string, unknown> }) => {
      const { message, ...rest } = entry;
      // kafkajs logs connection errors at ERROR while we retry them: that is a WARN by our rules.
      if (level <= logLevel.WARN) log.warn({ kafkajs: rest }, `kafkajs: ${message}`);
      else log.debug({ kafkajs: rest }, `kafkajs: ${message}`);
    };
}

/**
 * kafkajs's DefaultPartitioner (murmur2, as the Java client), remembering the partition of each key per
 * topic and partition count: a fleet has few keys (`{agent}/{device}`) and murmur2 in JavaScript plus
 * the partitioner's per-message filtering was ~8 % of kafkajs's CPU per record (bench/collector.ts
 * profile). Keyless messages and a changed partition count go to the inner partitioner.
 */
export const memoizedDefaultPartitioner: ICustomPartitioner = () => {
  const inner = Partitioners.DefaultPartitioner();
  const memo = new Map<string, number>();
  return (args) => {
    const { topic, partitionMetadata, message } = args;
    if (message.partition !== undefined && message.partition !== null) return message.partition;
    if (message.key === null || message.key === undefined) return inner(args);
    const k = `${topic}\0${partitionMetadata.length}\0${message.key.toString()}`;
    let p = memo.get(k);
    if (p === undefined) {
      p = inner(args);
      if (memo.size >= 100_000) memo.clear(); // bounded: a fleet with more keys pays murmur2 again
      memo.set(k, p);
    }
    return p;
  };
};

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  /** Records per sendBatch; small records, so one request per 1000 keeps round trips low. */
  readonly batchSize: number;
  private readonly kafka: Kafka;
  private producer: Producer | null = null;
  private ready = false;

  constructor(
    private readonly cfg: KafkaConfig,
    private readonly log: Logger,
    private readonly opts: KafkaSinkOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 1000;
    const conf: KafkaJsConfig = {
      clientId: cfg.clientId,
      brokers: cfg.brokers,
      ssl: cfg.ssl,
      connectionTimeout: 3000,
      requestTimeout: opts.requestTimeoutMs ?? 10_000,
      // Our runner owns retries (with its own backoff and metrics); kafkajs retries only briefly.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(log),
    };
    if (opts.socketFactory) conf.socketFactory = opts.socketFactory;
    if (cfg.sasl) {
      const password = cfg.sasl.password ?? readSecretFile(cfg.sasl.passwordFile!);
      conf.sasl = {
        mechanism: cfg.sasl.mechanism,
        username: cfg.sasl.username,
        password,
      } as KafkaJsConfig['sasl'];
    }
    this.kafka = new Kafka(conf);
  }

  private topicFor(item: SpoolItem): string {
    const t = this.cfg.topics;
    switch (item.kind) {
      case 'summaries':
        return t.summaries;
      case 'alerts':
        return t.alerts;
      case 'status':
        return t.status;
      case 'late':
        return t.late;
      case 'deadletter':
        return t.deadletter;
    }
  }

  private message(item: SpoolItem): Message {
    const headers: IHeaders = {};
    if (item.kind === 'deadletter') {
      headers['edgeflow-error'] = item.error ?? 'unknown';
      headers['edgeflow-agent'] = item.agent;
      if (item.topic) headers['edgeflow-topic'] = item.topic;
      if (item.itemId) headers['edgeflow-id'] = item.itemId;
      return { key: item.agent, value: item.body, headers };
    }
    headers['edgeflow-id'] = item.itemId ?? '';
    return {
      key: item.device ? `${item.agent}/${item.device}` : item.agent,
      value: itemRecordJson(item),
      headers,
    };
  }

  /** Connects, then creates missing topics (or, with createTopics: false, fails naming the missing ones). */
  private async ensureReady(): Promise<void> {
    if (this.ready) return;
    const admin: Admin = this.kafka.admin();
    await admin.connect();
    try {
      const want = [...new Set(Object.values(this.cfg.topics))];
      const have = new Set(await admin.listTopics());
      const missing = want.filter((t) => !have.has(t));
      if (missing.length > 0) {
        if (!this.cfg.createTopics) {
          throw new EdgeflowError(
            'SINK_UNAVAILABLE',
            `kafka topics missing: ${missing.join(', ')} (create them or set kafka.createTopics: true)`,
            { retriable: false },
          );
        }
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: this.opts.numPartitions ?? 3,
            replicationFactor: this.opts.replicationFactor ?? -1,
          })),
        });
        this.log.info({ topics: missing }, 'created kafka topics');
      }
    } finally {
      await admin.disconnect();
    }
    if (!this.producer) {
      this.producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // murmur2, as the Java client: the same key lands on the same partition whoever produces it.
        createPartitioner: memoizedDefaultPartitioner,
      });
    }
    await this.producer.connect();
    this.ready = true;
  }

  async start(): Promise<void> {
    try {
      await this.ensureReady();
    } catch (e) {
      if (e instanceof EdgeflowError && !e.retriable) throw e;
      // Kafka down at start is not fatal: the spool holds the data and the runner keeps trying.
      this.log.warn(
        { err: (e as Error).message, code: 'SINK_UNAVAILABLE' },
        'kafka not reachable at start; will retry',
      );
    }
  }

  async write(items: readonly SpoolItem[]): Promise<WriteResult> {
    try {
      await this.ensureReady();
    } catch (e) {
      const retriable = !(e instanceof EdgeflowError) || e.retriable;
      return allFailed(items.length, {
        error: (e as Error).message,
        code: retriable ? 'unavailable' : 'topics_missing',
        retriable: true,
      });
    }
    try {
      await this.send(items);
      return { ok: items.length, failed: [] };
    } catch (e) {
      const c = classifyKafkaError(e);
      if (c.retriable) {
        if (/disconnected|not connected|closed/i.test(c.message)) this.ready = false;
        return allFailed(items.length, { error: c.message, code: c.code, retriable: true });
      }
      // A permanent error (e.g. MESSAGE_TOO_LARGE) for the batch: find the culprits one by one.
      return this.writeOneByOne(items);
    }
  }

  private async send(items: readonly SpoolItem[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const it of items) {
      const t = this.topicFor(it);
      let list = byTopic.get(t);
      if (!list) {
        list = [];
        byTopic.set(t, list);
      }
      list.push(this.message(it));
    }
    await this.producer!.sendBatch({
      acks: -1,
      timeout: this.opts.requestTimeoutMs ?? 10_000,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  }

  private async writeOneByOne(items: readonly SpoolItem[]): Promise<WriteResult> {
    const res: WriteResult = { ok: 0, failed: [] };
    for (let index = 0; index < items.length; index++) {
      try {
        await this.send([items[index]!]);
        res.ok++;
      } catch (e) {
        const c = classifyKafkaError(e);
        res.failed.push({ index, error: c.message, code: c.code, retriable: c.retriable });
        if (c.retriable) {
          // Unavailable again: the rest of the batch waits for the next attempt.
          for (let j = index + 1; j < items.length; j++) {
            res.failed.push({ index: j, error: 'not attempted', code: c.code, retriable: true });
          }
          break;
        }
      }
    }
    return res;
  }

  async healthcheck(): Promise<boolean> {
    try {
      await this.ensureReady();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.ready = false;
    await this.producer?.disconnect().catch(() => {});
  }
}
