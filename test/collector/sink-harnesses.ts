// The real destinations the Sink conformance suite (collector/sinks/sink.conformance.ts) runs against:
// the test bed's Kafka (one harness per client), InfluxDB 1.x (v1 write API) and VictoriaMetrics (the
// InfluxDB v2 write API). Each `make(via)` builds a sink on fresh names that reaches its destination at
// `via`, the suite's cuttable TCP proxy.

import { syncBuiltinESMExports } from 'node:module';
import net, { type Socket } from 'node:net';
import { type ISocketFactory, Kafka, logLevel, Partitioners } from 'kafkajs';
import { InfluxSink } from '../../collector/sinks/influxdb.ts';
import { KafkaSink } from '../../collector/sinks/kafka.ts';
import type { SinkHarness, SinkUnderTest, StoredSummary } from '../../collector/sinks/sink.conformance.ts';
import { summaryItem } from '../../collector/sinks/sink.conformance.ts';
import type { SpoolItem } from '../../collector/spool/spool.ts';
import { nullLogger } from '../../shared/log.ts';
import { influxQuery, services, uniqueName, victoriaExport } from '../helpers/services.ts';
import { header, kcatRead } from './kit.ts';

type Addr = { host: string; port: number };
/** What the sinks' constructors take (whatever module the config types live in). */
type KafkaConfig = ConstructorParameters<typeof KafkaSink>[0];
type InfluxConfig = ConstructorParameters<typeof InfluxSink>[0];

function hostPort(s: string): Addr {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** kafkajs's DefaultPartitioner (murmur2, as the Java client): the mapping both clients must keep. */
const kafkajsPartitioner = Partitioners.DefaultPartitioner();
const PARTITIONS = 3;
function murmur2Partition(key: string): number {
  return kafkajsPartitioner({
    topic: 't',
    partitionMetadata: Array.from({ length: PARTITIONS }, (_, partitionId) => ({
      partitionId,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    })),
    message: { key, value: '' },
  });
}

/**
 * The summaries topic is made here, before the sink starts, with a 64 KiB `max.message.bytes`: a
 * 200 KiB summary is then refused for good (MESSAGE_TOO_LARGE) while its dead letter fits the
 * dead-letter topic the sink creates with the broker's default (1 MiB). The other four topics are the
 * sink's to create.
 */
const SUMMARY_MAX_BYTES = 64 * 1024;

async function createSummariesTopic(topic: string): Promise<void> {
  const admin = new Kafka({
    clientId: 'edgeflow-conformance',
    brokers: services().kafka.brokers,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      timeout: 15_000,
      topics: [
        {
          topic,
          numPartitions: PARTITIONS,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: String(SUMMARY_MAX_BYTES) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Routes the Kafka client's connections to the broker's port (bootstrap and the advertised listener
 * alike) to `via`. kafkajs takes a socket factory; @platformatic/kafka has no such option, so its
 * `net.createConnection` calls are redirected (its named import of node:net follows the swap through
 * syncBuiltinESMExports), as test/collector/kit.ts KafkaSwitch does.
 */
function redirect(client: 'platformatic' | 'kafkajs', brokerPort: number, via: Addr) {
  if (client === 'kafkajs') {
    const socketFactory = (({ host, port, onConnect }) =>
      port === brokerPort
        ? net.connect({ host: via.host, port: via.port }, onConnect)
        : net.connect({ host, port }, onConnect)) as ISocketFactory;
    return { socketFactory, release: () => {} };
  }
  const original = net.createConnection;
  const hooked = ((...args: unknown[]) => {
    const [o] = args;
    if (typeof o === 'object' && o !== null && 'port' in o && Number(o.port) === brokerPort) {
      return original({ ...(o as net.TcpNetConnectOpts), host: via.host, port: via.port }) as Socket;
    }
    return Reflect.apply(original, net, args) as Socket;
  }) as typeof net.createConnection;
  net.createConnection = hooked;
  syncBuiltinESMExports();
  return {
    socketFactory: undefined,
    release: () => {
      if (net.createConnection === hooked) net.createConnection = original;
      syncBuiltinESMExports();
    },
  };
}

function kafkaTopics(p: string): KafkaConfig['topics'] {
  return {
    summaries: `${p}.s`,
    alerts: `${p}.a`,
    status: `${p}.st`,
    late: `${p}.l`,
    deadletter: `${p}.d`,
  };
}

export function kafkaHarness(client: 'platformatic' | 'kafkajs'): SinkHarness {
  const brokers = services().kafka.brokers;
  const target = hostPort(brokers[0]!);
  const build = (topics: KafkaConfig['topics'], createTopics: boolean, via?: Addr) => {
    const r = via ? redirect(client, target.port, via) : { socketFactory: undefined, release: () => {} };
    const cfg: KafkaConfig = { brokers, clientId: 'conformance', topics, ssl: false, client, createTopics };
    const sink = new KafkaSink(cfg, nullLogger(), {
      requestTimeoutMs: 5000,
      numPartitions: PARTITIONS,
      replicationFactor: 1,
      ...(r.socketFactory ? { socketFactory: r.socketFactory } : {}),
    });
    return { sink, release: r.release };
  };
  const kafkaSut = (topics: KafkaConfig['topics'], b: ReturnType<typeof build>) =>
    ({
      sink: b.sink,
      release: b.release,
      topics,
      async stored(agent: string): Promise<StoredSummary[]> {
        const recs = await kcatRead(brokers, topics.summaries);
        return recs
          .filter((r) => r.key?.startsWith(`${agent}/`))
          .map((r) => {
            const v = JSON.parse(r.payload!) as { device: string; agent: string; window: { start: number } };
            const s: StoredSummary = {
              device: v.device,
              start: v.window.start,
              agent: v.agent,
              partition: r.partition,
            };
            const id = header(r, 'edgeflow-id');
            if (id !== undefined) s.itemId = id;
            if (r.key !== null) s.key = r.key;
            return s;
          });
      },
    }) satisfies SinkUnderTest & { topics: KafkaConfig['topics'] };
  return {
    target,
    resend: 'copies',
    partitionOf: murmur2Partition,
    async make(via) {
      const topics = kafkaTopics(uniqueName('edgeflow-conf'));
      await createSummariesTopic(topics.summaries);
      return kafkaSut(topics, build(topics, true, via));
    },
    destination: {
      async created(sut) {
        const topics = (sut as ReturnType<typeof kafkaSut>).topics;
        const admin = new Kafka({
          clientId: 'edgeflow-conformance',
          brokers,
          logLevel: logLevel.NOTHING,
        }).admin();
        await admin.connect();
        try {
          const have = new Set(await admin.listTopics());
          const md = await admin.fetchTopicMetadata({ topics: [topics.alerts] });
          if (md.topics[0]?.partitions.length !== PARTITIONS)
            throw new Error('created topic has wrong partitions');
          return [topics.alerts, topics.status, topics.late, topics.deadletter].filter((t) => have.has(t));
        } finally {
          await admin.disconnect();
        }
      },
      async missing() {
        const topics = kafkaTopics(uniqueName('edgeflow-conf-missing'));
        return kafkaSut(topics, build(topics, false));
      },
    },
    refused: {
      code: /too_large/,
      item(agent, seq) {
        const it = summaryItem(agent, 'too-big', Date.UTC(2024, 0, 1) + seq * 60_000);
        const v = JSON.parse(it.body.toString()) as Record<string, unknown>;
        return { ...it, body: Buffer.from(JSON.stringify({ ...v, pad: 'x'.repeat(200 * 1024) })) };
      },
      async deadLetters(sut, agent) {
        const topics = (sut as ReturnType<typeof kafkaSut>).topics;
        const recs = await kcatRead(brokers, topics.deadletter);
        return recs
          .filter((r) => header(r, 'edgeflow-agent') === agent)
          .map((r) => ({ itemId: header(r, 'edgeflow-id') ?? '', error: header(r, 'edgeflow-error') ?? '' }));
      },
    },
  };
}

/** A shard no other data uses (January 2001): `mean` is a string there, so summaries are refused. */
const CONFLICT_T = Date.UTC(2001, 0, 1);
let conflictSeeded: Promise<void> | null = null;
function seedConflict(): Promise<void> {
  conflictSeeded ??= (async () => {
    const i = services().influx1;
    const res = await fetch(`${i.url}/write?db=${i.db}&precision=ms`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${i.username}:${i.password}`).toString('base64')}` },
      body: `edgeflow_summary,agent=conflict-seed,device=x,metric=m,window=w mean="text" ${CONFLICT_T}`,
    });
    await res.arrayBuffer();
    // 400 on a re-run: the field is a string there already, which is all we need.
    if (res.status !== 204 && res.status !== 400) throw new Error(`seed write: HTTP ${res.status}`);
  })();
  return conflictSeeded;
}

export function influxV1Harness(): SinkHarness {
  const env = services().influx1;
  const target = hostPort(new URL(env.url).host);
  return {
    target,
    resend: 'overwrite',
    async make(via) {
      await seedConflict();
      const url = via ? `http://${via.host}:${via.port}` : env.url;
      const cfg = {
        url,
        api: 'v1',
        db: env.db,
        username: env.username,
        password: env.password,
        batchSize: 5000,
        timeout: 5000,
      } satisfies InfluxConfig;
      return {
        sink: new InfluxSink(cfg, nullLogger()),
        async stored(agent) {
          const r = await influxQuery(
            `SELECT "count", "device" FROM edgeflow_summary WHERE agent = '${agent}'`,
          );
          const rows = r.results[0]?.series?.[0]?.values ?? [];
          return rows.map((row) => ({ start: row[0] as number, device: row[2] as string }));
        },
      };
    },
    missingAtWrite: {
      code: /^not_found$/,
      async missing() {
        const cfg = {
          url: env.url,
          api: 'v1',
          db: `edgeflow_missing_${process.pid}`,
          username: env.username,
          password: env.password,
          batchSize: 5000,
          timeout: 5000,
        } satisfies InfluxConfig;
        return { sink: new InfluxSink(cfg, nullLogger()), stored: async () => [] };
      },
    },
    refused: {
      code: /^bad_point$/,
      item(agent: string, seq: number): SpoolItem {
        return summaryItem(agent, 'conflict', CONFLICT_T + seq * 60_000);
      },
    },
  };
}

export function influxV2Harness(): SinkHarness {
  const url = services().victoria.url;
  const target = hostPort(new URL(url).host);
  return {
    target,
    // InfluxDB 2 overwrites a point sent again (same series and time); VictoriaMetrics, its stand-in in
    // the test bed, keeps every sample it is sent (no -dedup.minScrapeInterval), so here each send is a
    // copy carrying the same series and time, which a query de-duplicates.
    resend: 'copies',
    async make(via) {
      const cfg = {
        url: via ? `http://${via.host}:${via.port}` : url,
        api: 'v2',
        org: 'plant',
        bucket: 'edgeflow',
        token: 'unused',
        batchSize: 5000,
        timeout: 5000,
      } satisfies InfluxConfig;
      return {
        sink: new InfluxSink(cfg, nullLogger()),
        async stored(agent) {
          const series = await victoriaExport(`{__name__="edgeflow_summary_count",agent="${agent}"}`);
          return series.flatMap((s) => s.timestamps.map((start) => ({ start, device: s.metric.device! })));
        },
      };
    },
    refused: {
      skip: 'VictoriaMetrics answers 204 to every line it can parse, so no write it refuses for good can be produced',
    },
  };
}
