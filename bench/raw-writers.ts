// The ceiling of bench/collector.ts: the two client paths the collector's sinks stand on, used raw on
// the same records. A raw idempotent Kafka producer (acks -1, one request in flight, batches of 500,
// murmur2 partitions as the Java client, key/value/header as the sink makes them) with either client
// library the sink can use (@platformatic/kafka, the default, or kafkajs; issue 18) and a raw HTTP
// line-protocol writer (POST /write?db=..&precision=ms, 500 points per request, points from
// shared/influx.ts). Run on the bench's thread, or each on a worker thread of its own
// (raw-writer-thread.ts) when measuring the two together with the parallelism the collector has.
import { compatibilityPartitioner, Producer, stringSerializer } from '@platformatic/kafka';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { summaryPoint } from '../shared/influx.ts';
import type { Summary } from '../shared/model.ts';
import { services } from '../test/helpers/services.ts';
import { BATCH, summary } from './collector-kit.ts';
import { percentiles, stopwatch } from './lib.ts';

export type RawRecords = { agent: string; s: Summary }[];

export interface RawRun {
  t: ReturnType<ReturnType<typeof stopwatch>['stop']>;
  lat: ReturnType<typeof percentiles>;
}

/** The items as consumers see them, built the way the sinks build them (inside the timed loops). */
export function records(total: number): RawRecords {
  const t0 = Date.now() - 86_400_000;
  return Array.from({ length: total }, (_, i) => {
    const agent = `bench-gw-${i % 4}`;
    return { agent, s: summary(agent, i, t0) };
  });
}

export type RawKafkaClient = 'platformatic' | 'kafkajs';

export function rawKafka(topic: string, recs: RawRecords, client: RawKafkaClient): Promise<RawRun> {
  return client === 'kafkajs' ? rawKafkaJs(topic, recs) : rawPlatformatic(topic, recs);
}

async function rawPlatformatic(topic: string, recs: RawRecords): Promise<RawRun> {
  const producer = new Producer({
    clientId: 'edgeflow-bench-raw',
    bootstrapBrokers: services().kafka.brokers,
    idempotent: true,
    acks: -1,
    retries: 2,
    autocreateTopics: false,
    // murmur2's positive 31 bits, as the Java client and kafkajs's DefaultPartitioner.
    partitioner: compatibilityPartitioner,
    serializers: {
      key: stringSerializer,
      value: stringSerializer,
      headerKey: stringSerializer,
      headerValue: stringSerializer,
    },
  });
  try {
    const sw = stopwatch();
    const lat: number[] = [];
    for (let i = 0; i < recs.length; i += BATCH) {
      const messages = recs.slice(i, i + BATCH).map(({ agent, s }) => ({
        topic,
        key: `${agent}/${s.device}`,
        value: JSON.stringify({ ...s, agent }),
        headers: { 'edgeflow-id': s.id },
      }));
      const t0 = performance.now();
      await producer.send({ messages });
      lat.push(performance.now() - t0);
    }
    return { t: sw.stop(), lat: percentiles(lat) };
  } finally {
    await producer.close();
  }
}

async function rawKafkaJs(topic: string, recs: RawRecords): Promise<RawRun> {
  const kafka = new Kafka({
    clientId: 'edgeflow-bench-raw',
    brokers: services().kafka.brokers,
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    const sw = stopwatch();
    const lat: number[] = [];
    for (let i = 0; i < recs.length; i += BATCH) {
      const messages = recs.slice(i, i + BATCH).map(({ agent, s }) => ({
        key: `${agent}/${s.device}`,
        value: JSON.stringify({ ...s, agent }),
        headers: { 'edgeflow-id': s.id },
      }));
      const t0 = performance.now();
      await producer.sendBatch({
        acks: -1,
        timeout: 10_000,
        topicMessages: [{ topic, messages }],
      });
      lat.push(performance.now() - t0);
    }
    return { t: sw.stop(), lat: percentiles(lat) };
  } finally {
    await producer.disconnect();
  }
}

export async function rawInflux(db: string, recs: RawRecords): Promise<RawRun> {
  const env = services().influx1;
  const url = `${env.url}/write?${new URLSearchParams({ db, precision: 'ms' })}`;
  const auth = `Basic ${Buffer.from(`${env.username}:${env.password}`).toString('base64')}`;
  const sw = stopwatch();
  const lat: number[] = [];
  for (let i = 0; i < recs.length; i += BATCH) {
    const body = recs
      .slice(i, i + BATCH)
      .map(({ agent, s }) => summaryPoint(agent, s).toLineProtocol())
      .join('\n');
    const t0 = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'text/plain; charset=utf-8' },
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 204) throw new Error(`influx write: HTTP ${res.status}`);
    lat.push(performance.now() - t0);
  }
  return { t: sw.stop(), lat: percentiles(lat) };
}
