// The Kafka sink's client with kafkajs (`kafka.client: kafkajs`). kafkajs has had no maintainer since
// 2023 and was the largest block of the collector's profile (issue 18): no longer the default, kept for
// brokers the default client does not work with. Same records as kafka-platformatic.ts.
import {
  type Admin,
  type ICustomPartitioner,
  type ISocketFactory,
  Kafka,
  type KafkaConfig as KafkaJsConfig,
  logLevel,
  Partitioners,
  type Producer,
} from 'kafkajs';
import { readSecretFile } from '../../shared/config-file.ts';
import type { Logger } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import {
  type KafkaClient,
  type KafkaErrorClass,
  type KafkaRecord,
  PERMANENT_KAFKA_ERRORS,
} from './kafka-client.ts';

export interface KafkaJsOptions {
  requestTimeoutMs: number;
  /** kafkajs socket factory (tests inject outages through it; STYLE.md: injected sockets). */
  socketFactory?: ISocketFactory;
}

type KafkaErr = Error & { type?: string; originalError?: KafkaErr; cause?: KafkaErr };

/**
 * kafkajs wraps the last error in KafkaJSNumberOfRetriesExceeded (retriable: false) once its own short
 * retries are spent, so `retriable` cannot be used as is: classify the innermost error.
 */
function innermost(e: unknown): KafkaErr {
  let err = e as KafkaErr;
  for (let i = 0; i < 5 && (err.originalError ?? err.cause); i++) err = (err.originalError ?? err.cause)!;
  return err;
}

export function classifyKafkaJsError(e: unknown): KafkaErrorClass {
  const err = innermost(e);
  const code = (err.type ?? err.name ?? 'error').replace(/^KafkaJS/, '').toLowerCase();
  const message = (e as Error).message;
  return {
    retriable: !PERMANENT_KAFKA_ERRORS.has(err.type ?? ''),
    code,
    message,
    disconnected: /disconnected|not connected|closed/i.test(message),
  };
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

export class KafkaJsClient implements KafkaClient {
  private readonly kafka: Kafka;
  private producer: Producer | null = null;

  constructor(cfg: KafkaConfig, log: Logger, opts: KafkaJsOptions) {
    const conf: KafkaJsConfig = {
      clientId: cfg.clientId,
      brokers: cfg.brokers,
      ssl: cfg.ssl,
      connectionTimeout: 3000,
      requestTimeout: opts.requestTimeoutMs,
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

  private async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  }

  listTopics(): Promise<string[]> {
    return this.withAdmin((admin) => admin.listTopics());
  }

  async createTopics(topics: string[], numPartitions: number, replicationFactor: number): Promise<void> {
    await this.withAdmin((admin) =>
      admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor })),
      }),
    );
  }

  async connectProducer(): Promise<void> {
    this.producer ??= this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // murmur2, as the Java client: the same key lands on the same partition whoever produces it.
      createPartitioner: memoizedDefaultPartitioner,
    });
    await this.producer.connect();
  }

  async send(byTopic: ReadonlyMap<string, KafkaRecord[]>, timeoutMs: number): Promise<void> {
    if (!this.producer) await this.connectProducer();
    try {
      await this.producer!.sendBatch({
        acks: -1,
        timeout: timeoutMs,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (e) {
      // When one partition of a produce request is refused (MESSAGE_TOO_LARGE), kafkajs rolls back the
      // sequence numbers of *every* partition of the request (sendMessages.js), also of those the broker
      // wrote; the next record there reuses a written sequence and the broker answers
      // OUT_OF_ORDER_SEQUENCE_NUMBER, which is retriable, forever: one refused item wedged the sink
      // (found by the Sink conformance suite, issue 13). A new producer (new producer id, sequences
      // from 0) is the way out; the records written twice are copies with the same `edgeflow-id`.
      const type = innermost(e).type ?? '';
      if (PERMANENT_KAFKA_ERRORS.has(type) || type === 'OUT_OF_ORDER_SEQUENCE_NUMBER') {
        const p = this.producer;
        this.producer = null;
        await p?.disconnect().catch(() => {});
      }
      throw e;
    }
  }

  classify(err: unknown): KafkaErrorClass {
    return classifyKafkaJsError(err);
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
  }
}
