// Cluster mode throughput (issue 17): items per CPU-second of an ingest node and of a forwarder, since
// 2 shared cores bound the total, and the fleet's items/s with 1 → 2 → 3 ingest nodes.
//
//   node --import tsx bench/cluster.ts        (or `npm run bench -- cluster`)
//
// Each case: N ingest nodes (`edgeflow-collector run`, collector.mode: cluster) as their own processes,
// 6 publishers (mqtt.js, authenticated agents, pre-serialised batches of 500 summaries, 2 in flight)
// spread over the nodes; every batch's PUBACK waits for Kafka (acks=all). CPU seconds per process from
// /proc. Then one Kafka forwarder (a fresh consumer group) forwards everything the cases produced
// (transactions with dedup, changelog and offsets) and one InfluxDB forwarder writes it. All on the test
// bed's single Kafka broker: see BENCHMARKS.md for what 3 brokers with RF 3 change.
// EDGEFLOW_BENCH_CLUSTER_ITEMS (30000 per case).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Kafka, logLevel } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { groupCaughtUp } from '../test/cluster/kit.ts';
import { influxQuery, services, uniqueName } from '../test/helpers/services.ts';
import { BATCH, batchPayload, makeCredentials, procCpuSeconds, summary } from './collector-kit.ts';
import { type BenchResult, isMain, load1, printResult, waitFor } from './lib.ts';

const ITEMS = Number(process.env.EDGEFLOW_BENCH_CLUSTER_ITEMS ?? 30_000);
const PUBLISHERS = 6;
const IN_FLIGHT = 2;

interface NodeProc {
  child: ChildProcess;
  ready: { http: string; mqtt?: { port: number }[] };
  cpuSeconds(): number;
  stop(): Promise<void>;
}

async function spawnCollector(args: string[], logFile: string): Promise<NodeProc> {
  const root = join(import.meta.dirname, '..');
  const child = spawn(
    process.execPath,
    [join(root, 'bin/edgeflow-collector.js'), ...args, '--log-level', 'warn'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: root,
    },
  );
  child.stderr!.pipe(createWriteStream(logFile, { flags: 'a' }));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<NodeProc['ready']>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 60 s; log ${logFile}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`exited (${code}); log ${logFile}`)));
    lines.on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.ready) {
          clearTimeout(timer);
          resolve(j);
        }
      } catch {}
    });
  });
  const pid = child.pid!;
  return {
    child,
    ready,
    cpuSeconds: () => procCpuSeconds(pid),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await once(child, 'exit');
      clearTimeout(t);
    },
  };
}

async function publish(clients: { agent: string; client: MqttClient; batches: Buffer[] }[]): Promise<void> {
  await Promise.all(
    clients.map(async ({ agent, client, batches }) => {
      let next = 0;
      const worker = async () => {
        while (next < batches.length) {
          await client.publishAsync(`edgeflow/v1/${agent}/summaries`, batches[next++]!, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    }),
  );
}

export async function benchCluster(): Promise<BenchResult> {
  const env = services();
  const prefix = uniqueName('bench-cluster').replace(/[^a-zA-Z0-9._-]/g, '-');
  const dir = mkdtempSync(join(process.env.EDGEFLOW_BENCH_DIR ?? tmpdir(), 'edgeflow-bench-cluster-'));
  const agents = Array.from({ length: PUBLISHERS }, (_, i) => `${prefix}-gw-${i}`);
  const credentials = join(dir, 'agents.json');
  const secrets = await makeCredentials(credentials, agents, { N: 1024, r: 8, p: 1, keylen: 32 });
  const db = prefix.replace(/[^a-zA-Z0-9_]/g, '_');
  await influxQuery(`CREATE DATABASE "${db}"`, { admin: true, db: '' });
  const topics = {
    summaries: `${prefix}.summaries`,
    alerts: `${prefix}.alerts`,
    status: `${prefix}.status`,
    late: `${prefix}.late`,
    deadletter: `${prefix}.deadletter`,
  };
  const ingestTopic = `${prefix}.ingest`;
  const cfg = (id: string) => {
    const f = join(dir, `${id}.yaml`);
    writeFileSync(
      f,
      `collector: { id: ${id}, dataDir: ${join(dir, id)}, mode: cluster }
mqtt: { listen: [tcp://127.0.0.1:0], credentials: ${credentials} }
http: { listen: 127.0.0.1:0 }
kafka: { brokers: ${JSON.stringify(env.kafka.brokers)}, topics: ${JSON.stringify(topics)} }
influx: { url: ${env.influx1.url}, api: v1, db: ${db}, username: ${env.influx1.adminUser}, password: ${env.influx1.adminPassword} }
cluster: { ingestTopic: ${ingestTopic}, partitions: 6, forwarderGroup: ${prefix}-fwd, influxGroup: ${prefix}-influx }
`,
    );
    return f;
  };
  const rows: BenchResult['rows'] = [];
  const notes: string[] = [];
  const live: NodeProc[] = [];
  let produced = 0;
  try {
    for (const n of [1, 2, 3]) {
      const nodes: NodeProc[] = [];
      for (let i = 0; i < n; i++) {
        const p = await spawnCollector(
          ['run', '--config', cfg(`ingest-${i}`)],
          join(dir, `ingest-${n}-${i}.log`),
        );
        nodes.push(p);
        live.push(p);
      }
      const per = Math.ceil(ITEMS / PUBLISHERS / BATCH) * BATCH;
      const t0 = Date.now() + produced * 1000; // distinct summary ids per case
      const clients = await Promise.all(
        agents.map(async (agent, i) => {
          const port = nodes[i % n]!.ready.mqtt![0]!.port;
          const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
            clientId: `edgeflow-${agent}`,
            username: agent,
            password: secrets[agent]!,
            protocolVersion: 4,
            reconnectPeriod: 0,
          });
          const batches: Buffer[] = [];
          for (let b = 0; b * BATCH < per; b++) {
            batches.push(
              batchPayload(
                agent,
                b,
                Array.from({ length: BATCH }, (_, k) => summary(agent, b * BATCH + k, t0)),
              ),
            );
          }
          return { agent, client, batches };
        }),
      );
      const cpu0 = nodes.map((p) => p.cpuSeconds());
      const w0 = performance.now();
      await publish(clients);
      const seconds = (performance.now() - w0) / 1000;
      const cpu = nodes.map((p, i) => p.cpuSeconds() - cpu0[i]!);
      const items = per * PUBLISHERS;
      produced += items;
      const cpuSum = cpu.reduce((a, b) => a + b, 0);
      rows.push({
        case: `${n} ingest node${n > 1 ? 's' : ''} (6 publishers, PUBACK after Kafka acks=all)`,
        items,
        itemsPerSec: Math.round(items / seconds),
        itemsPerCpuSecPerNode: Math.round(items / cpuSum),
        nodeCpuSeconds: cpu.map((c) => +c.toFixed(1)).join(' + '),
        load1: load1(),
      });
      await Promise.all(clients.map((c) => c.client.endAsync()));
      await Promise.all(nodes.map((p) => p.stop()));
    }

    for (const to of ['kafka', 'influx'] as const) {
      const group = to === 'kafka' ? `${prefix}-fwd` : `${prefix}-influx`;
      const w0 = performance.now();
      const f = await spawnCollector(
        ['forward', '--config', cfg('forwarder'), '--to', to, '--http', '127.0.0.1:0'],
        join(dir, `forward-${to}.log`),
      );
      live.push(f);
      const c0 = f.cpuSeconds();
      await waitFor(
        () => groupCaughtUp(env.kafka.brokers, group, ingestTopic),
        600_000,
        `${to} forwarder caught up`,
        500,
      );
      const seconds = (performance.now() - w0) / 1000;
      const cpu = f.cpuSeconds() - c0;
      rows.push({
        case: `1 ${to === 'kafka' ? 'Kafka forwarder (dedup + transaction per batch)' : 'InfluxDB forwarder (offsets after the write)'}`,
        items: produced,
        itemsPerSec: Math.round(produced / seconds),
        itemsPerCpuSecPerNode: Math.round(produced / cpu),
        nodeCpuSeconds: cpu.toFixed(1),
        load1: load1(),
      });
      await f.stop();
    }
    notes.push(
      'single Kafka broker on the same 2 shared cores as every process here; items/s is bounded by the machine, items per CPU-second is the per-process figure',
      'forwarder rows include start-up, group join and the changelog restore (their time is in items/s, little of their CPU)',
    );
  } finally {
    await Promise.all(live.map((p) => p.stop().catch(() => {})));
    const admin = new Kafka({
      clientId: 'bench-cluster',
      brokers: env.kafka.brokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin
      .deleteTopics({
        topics: [...Object.values(topics), ingestTopic, `${ingestTopic}.dedup-changelog`],
        timeout: 15_000,
      })
      .catch(() => {});
    await admin.disconnect();
    await influxQuery(`DROP DATABASE "${db}"`, { admin: true, db: '' }).catch(() => {});
    if (!process.env.EDGEFLOW_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
  return { rows, notes };
}

if (isMain(import.meta.url)) {
  printResult('cluster', await benchCluster());
  process.exit(0);
}
