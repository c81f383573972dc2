// Kafka sink (SPEC.md section 4): one record per item on the topic of its kind, key `{agent}/{device}`,
// value = the item JSON with `agent`, header `edgeflow-id`. Dead letters go to the dead-letter topic with
// the raw payload and `edgeflow-error`.
//
// Idempotent producer (acks=-1, one in-flight request, so the broker de-duplicates the producer's own
// retries). A re-send after a collector crash can still produce a second copy of a record; it carries
// the same key and `edgeflow-id`, which is what consumers de-duplicate on (SPEC 4).
// The client library is behind KafkaClient (kafka-client.ts): @platformatic/kafka by default,
// kafkajs with `kafka.client: kafkajs` (issue 18; README says why the default moved).
import type { ISocketFactory } from 'kafkajs';
import { EdgeflowError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import type { SpoolItem } from '../spool/spool.ts';
import type { KafkaClient, KafkaRecord } from './kafka-client.ts';
import { KafkaJsClient } from './kafka-kafkajs.ts';
import { PlatformaticKafkaClient } from './kafka-platformatic.ts';
import { allFailed, itemRecordBytes, type Sink, type WriteResult } from './sink.ts';

export interface KafkaSinkOptions {
  /** Per request timeout (ms). */
  requestTimeoutMs?: number;
  /** Records per write. [1000] */
  batchSize?: number;
  /** Partitions for topics the collector creates. */
  numPartitions?: number;
  replicationFactor?: number;
  /** kafkajs only: socket factory (tests inject outages through it; STYLE.md: injected sockets). */
  socketFactory?: ISocketFactory;
}

function clientFor(cfg: KafkaConfig, log: Logger, opts: KafkaSinkOptions): KafkaClient {
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  if (cfg.client === 'kafkajs') {
    return new KafkaJsClient(cfg, log, {
      requestTimeoutMs,
      ...(opts.socketFactory ? { socketFactory: opts.socketFactory } : {}),
    });
  }
  return new PlatformaticKafkaClient(cfg, log, { requestTimeoutMs });
}

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  /** Records per sendBatch; small records, so one request per 1000 keeps round trips low. */
  readonly batchSize: number;
  private readonly client: KafkaClient;
  private ready = false;

  constructor(
    private readonly cfg: KafkaConfig,
    private readonly log: Logger,
    private readonly opts: KafkaSinkOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 1000;
    this.client = clientFor(cfg, log, opts);
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

  private message(item: SpoolItem): KafkaRecord {
    const headers: Record<string, string> = {};
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
      value: itemRecordBytes(item),
      headers,
    };
  }

  /** Connects, then creates missing topics (or, with createTopics: false, fails naming the missing ones). */
  private async ensureReady(): Promise<void> {
    if (this.ready) return;
    const want = [...new Set(Object.values(this.cfg.topics))];
    const have = new Set(await this.client.listTopics());
    const missing = want.filter((t) => !have.has(t));
    if (missing.length > 0) {
      if (!this.cfg.createTopics) {
        throw new EdgeflowError(
          'SINK_UNAVAILABLE',
          `kafka topics missing: ${missing.join(', ')} (create them or set kafka.createTopics: true)`,
          { retriable: false },
        );
      }
      await this.client.createTopics(
        missing,
        this.opts.numPartitions ?? 3,
        this.opts.replicationFactor ?? -1,
      );
      this.log.info({ topics: missing }, 'created kafka topics');
    }
    await this.client.connectProducer();
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
      const c = this.client.classify(e);
      if (c.retriable) {
        if (c.disconnected) this.ready = false;
        return allFailed(items.length, { error: c.message, code: c.code, retriable: true });
      }
      // A permanent error (e.g. MESSAGE_TOO_LARGE) for the batch: find the culprits one by one.
      return this.writeOneByOne(items);
    }
  }

  private async send(items: readonly SpoolItem[]): Promise<void> {
    const byTopic = new Map<string, KafkaRecord[]>();
    for (const it of items) {
      const t = this.topicFor(it);
      let list = byTopic.get(t);
      if (!list) {
        list = [];
        byTopic.set(t, list);
      }
      list.push(this.message(it));
    }
    await this.client.send(byTopic, this.opts.requestTimeoutMs ?? 10_000);
  }

  private async writeOneByOne(items: readonly SpoolItem[]): Promise<WriteResult> {
    const res: WriteResult = { ok: 0, failed: [] };
    for (let index = 0; index < items.length; index++) {
      try {
        await this.send([items[index]!]);
        res.ok++;
      } catch (e) {
        const c = this.client.classify(e);
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
      // Ask the cluster even when ready: `ready` stays set through an outage the client does not report
      // as a disconnect (kafkajs's ECONNREFUSED), and the healthcheck said up while no broker answered
      // (found by the Sink conformance suite, issue 13).
      await this.client.listTopics();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.ready = false;
    await this.client.close();
  }
}
