// Issue 19: how long after a window's end its summary is visible in InfluxDB and in Kafka, and how long
// an alert takes from the reading that raised it to Kafka, with real processes end to end:
//
//   this process (publisher, N devices × 10 Hz, event time = now, QoS 1)
//     → the test bed's Mosquitto (18883) → edgeflow-agent (1 s tumbling windows, maxOutOfOrder 200ms,
//       a threshold rule on an `alarm` metric) → uplink → edgeflow-collector (own process)
//     → Kafka + InfluxDB 1.x sinks → read back here: a kafkajs consumer, InfluxDB polled every 50 ms.
//
// Latency of a window = first seen − window end (window end = start + 1 s, wall clock of this machine:
// all processes share it). Alert latency = first seen in Kafka − the firing/resolving reading's ts.
// Each configuration runs in the same process, one after the other, with fresh topics/database/agent:
// `old-timing` reproduces the timing before issue 19 (timer-only checkpoint, uplink always lingering
// maxDelay), `defaults` is an agent config without any timing key. The `--x10` rows run 10× the devices
// to check that throughput (readings accepted/s, summaries delivered/s, agent CPU per reading) holds.
//
//   node --import tsx bench/realtime.ts                    (alone)
//   npm run bench -- realtime                              (through bench/run.ts)
//   EDGEFLOW_BENCH_REALTIME_SECONDS=30 EDGEFLOW_BENCH_REALTIME_CONFIGS=old-timing,defaults ...
//   EDGEFLOW_BENCH_REALTIME_X10=0  (skip the 10× rows)
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import mqtt from 'mqtt';
import { metricValue, startAgent, tempDir, writeConfig } from '../test/helpers/agent-process.ts';
import { influxQuery, services } from '../test/helpers/services.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { makeTargets, startCollectorProcess } from './collector-kit.ts';
import { type BenchResult, isMain, load1, percentiles, printResult, sleep } from './lib.ts';

const RATE_HZ = 10;
const WINDOW_MS = 1000;
const INFLUX_POLL_MS = 50;

/** Agent config fragments per configuration (merged into the base config). */
const CONFIGS: Record<string, { note: string; agent: Record<string, unknown> }> = {
  defaults: { note: 'no timing key set', agent: {} },
  // The timing before issue 19: a checkpoint only on the 1 s timer, partial batches always wait maxDelay.
  'old-timing': {
    note: 'checkpoint.minInterval 1s, uplink.batch.maxDelay 1s, uplink.batch.sendWhenIdle false',
    agent: {
      checkpoint: { interval: '1s', minInterval: '1s' },
      uplink: { batch: { maxDelay: '1s', sendWhenIdle: false } },
    },
  },
  'maxDelay-100ms': {
    note: 'uplink.batch.maxDelay 100ms (the issue table second row)',
    agent: { uplink: { batch: { maxDelay: '100ms' } } },
  },
};

interface RunResult {
  row: Record<string, unknown>;
  stages: Record<string, unknown>;
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Histogram → { count, mean ms, p50/p99 ms upper bounds from the buckets } per label set (le aside). */
function histogram(text: string, name: string): Record<string, unknown> {
  const out: Record<string, { buckets: [number, number][]; sum: number; count: number }> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || !m[1]!.startsWith(name)) continue;
    const labels = Object.fromEntries(
      [...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!] as [string, string]),
    );
    const key = Object.entries(labels)
      .filter(([k]) => k !== 'le')
      .map(([, v]) => v)
      .join('/');
    const h = out[key] ?? { buckets: [], sum: 0, count: 0 };
    out[key] = h;
    if (m[1] === `${name}_bucket`)
      h.buckets.push([labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le), Number(m[3])]);
    else if (m[1] === `${name}_sum`) h.sum += Number(m[3]);
    else if (m[1] === `${name}_count`) h.count += Number(m[3]);
  }
  const q = (h: { buckets: [number, number][]; count: number }, p: number) => {
    const b = h.buckets.sort((x, y) => x[0] - y[0]).find(([, c]) => c >= p * h.count);
    return b ? b[0] * 1000 : null;
  };
  return Object.fromEntries(
    Object.entries(out).map(([k, h]) => [
      k,
      {
        count: h.count,
        meanMs: h.count ? Math.round((h.sum / h.count) * 10000) / 10 : null,
        p50LeMs: q(h, 0.5),
        p99LeMs: q(h, 0.99),
      },
    ]),
  );
}

async function runOnce(configName: string, devices: number, seconds: number): Promise<RunResult> {
  const cfg = CONFIGS[configName];
  if (!cfg) throw new Error(`unknown config ${configName} (known: ${Object.keys(CONFIGS).join(', ')})`);
  const env = services();
  const tag = `rt${devices}${configName.replace(/[^a-z0-9]/gi, '')}`;
  const targets = await makeTargets(tag, 1);
  const agentId = `rt-${process.pid}-${Date.now().toString(36)}`;
  const { proc: collector, secrets } = await startCollectorProcess({ agents: [agentId], targets });
  const dir = tempDir('edgeflow-bench-realtime-');
  const prefix = `rt/${agentId}`;
  const secretFile = join(dir, 'uplink-secret');
  writeFileSync(secretFile, secrets[agentId]!);
  const base = {
    agent: { id: agentId, dataDir: join(dir, 'data') },
    sources: [
      {
        type: 'mqtt',
        name: 'sensors',
        url: env.mosquitto.url,
        topics: [`${prefix}/+/+`],
        topicPattern: `${prefix}/{device}/{metric}`,
        format: 'json',
      },
    ],
    watermark: { maxOutOfOrder: '200ms' },
    windows: [
      {
        name: 't1s',
        type: 'tumbling',
        size: '1s',
        match: { metric: 'temperature' },
        aggregates: ['count', 'min', 'max', 'mean'],
      },
    ],
    rules: [
      {
        name: 'alarm',
        kind: 'threshold',
        on: 'reading',
        match: { metric: 'alarm' },
        when: 'value > 100',
        severity: 'critical',
      },
    ],
    uplink: {
      urls: [`mqtt://127.0.0.1:${collector.mqttPort}`],
      username: agentId,
      passwordFile: secretFile,
    },
    http: { listen: '127.0.0.1:0' },
  };
  // One level deep merge: `uplink: { batch }` replaces the batch, keeps urls and credentials.
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(cfg.agent)) {
    const cur = merged[k];
    merged[k] = cur && typeof cur === 'object' && !Array.isArray(cur) ? { ...cur, ...(v as object) } : v;
  }
  const agent = await startAgent(writeConfig(dir, merged));
  const kafka = new Kafka({
    clientId: 'edgeflow-bench-rt',
    brokers: env.kafka.brokers,
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `bench-rt-${agentId}`, maxWaitTimeInMs: 10, minBytes: 1 });
  const kafkaSeen = new Map<
    string,
    { at: number; body: { window?: { start: number; end: number }; ts?: number } }
  >();
  const influxSeen = new Map<string, number>(); // `${device}@${start}` → first seen
  const pub = mqtt.connect(env.mosquitto.url, { clientId: `bench-rt-pub-${agentId}`, clean: true });
  let timer: ReturnType<typeof setTimeout> | null = null;
  let polling = true;
  let poller: Promise<void> = Promise.resolve();
  try {
    await waitFor(
      'agent source and uplink up',
      async () => {
        const st = await agent.status();
        return st.sources.sensors?.state === 'up' && st.uplink?.connected === true;
      },
      { timeoutMs: 30_000 },
    );
    await consumer.connect();
    await consumer.subscribe({
      topics: [targets.topics.summaries, targets.topics.alerts],
      fromBeginning: true,
    });
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
    });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const at = Date.now();
        const id = message.headers?.['edgeflow-id']?.toString();
        if (!id || kafkaSeen.has(id)) return;
        kafkaSeen.set(id, { at, body: JSON.parse(message.value!.toString()) });
      },
    });
    await waitFor('kafka consumer joined', () => joined, { timeoutMs: 30_000 });
    await new Promise<void>((resolve, reject) => {
      if (pub.connected) resolve();
      pub.once('connect', () => resolve());
      pub.once('error', reject);
    });
    // InfluxDB poller: every 50 ms, what exists now (window starts of the last 20 s).
    poller = (async () => {
      while (polling) {
        const t0 = performance.now();
        try {
          const res = await influxQuery(
            `SELECT "count" FROM edgeflow_summary WHERE time > now() - 20s GROUP BY "device"`,
            { db: targets.db },
          );
          const at = Date.now();
          for (const s of res.results?.[0]?.series ?? []) {
            for (const [t] of s.values) {
              const k = `${s.tags?.device}@${t}`;
              if (!influxSeen.has(k)) influxSeen.set(k, at);
            }
          }
        } catch {}
        await sleep(Math.max(0, INFLUX_POLL_MS - (performance.now() - t0)));
      }
    })();

    const m0 = await agent.metrics();
    const agentPid = agent.proc.pid!;
    const cpu0 = cpuSeconds(agentPid);
    const collectorCpu0 = collector.cpuSeconds();
    const startedAt = Date.now();
    const endAt = startedAt + seconds * 1000;
    let tickNo = 0;
    let published = 0;
    const alarmValues = new Map<number, number>();
    // One tick every 100 ms, scheduled against the start time (no drift): every device, then the alarm.
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = Date.now();
        if (now >= endAt) {
          resolve();
          return;
        }
        for (let d = 0; d < devices; d++) {
          const value = 20 + ((d + tickNo) % 7);
          pub.publish(`${prefix}/dev-${d}/temperature`, `{"value":${value},"ts":${Date.now()}}`, { qos: 1 });
          published++;
        }
        // The alarm fires on every 10th reading and resolves on the next: an alert each ~500 ms.
        const ts = Date.now();
        const v = tickNo % 5 === 0 ? 150 : 10;
        alarmValues.set(ts, v);
        pub.publish(`${prefix}/alarm-0/alarm`, `{"value":${v},"ts":${ts}}`, { qos: 1 });
        tickNo++;
        timer = setTimeout(tick, Math.max(0, startedAt + tickNo * (1000 / RATE_HZ) - Date.now()));
      };
      tick();
    });
    const pubEnd = Date.now();
    // Windows whose end the watermark has surely passed while devices were still sending.
    const firstEnd = Math.ceil((startedAt + 1) / WINDOW_MS) * WINDOW_MS + WINDOW_MS;
    const lastEnd = Math.floor((pubEnd - 500) / WINDOW_MS) * WINDOW_MS;
    const expected = ((lastEnd - firstEnd) / WINDOW_MS + 1) * devices;
    const inRange = (start: number) => start + WINDOW_MS >= firstEnd && start + WINDOW_MS <= lastEnd;
    const countKafka = () =>
      [...kafkaSeen.values()].filter((v) => v.body.window && inRange(v.body.window.end - WINDOW_MS)).length;
    const countInflux = () => [...influxSeen.keys()].filter((k) => inRange(Number(k.split('@')[1]))).length;
    await waitFor(
      'every window in Kafka and InfluxDB',
      () => countKafka() >= expected && countInflux() >= expected,
      {
        timeoutMs: 20_000,
        intervalMs: 100,
      },
    ).catch(() => undefined);
    const elapsed = (pubEnd - startedAt) / 1000;
    const cpu = cpuSeconds(agentPid) - cpu0;
    const collectorCpu = collector.cpuSeconds() - collectorCpu0;
    const m1 = await agent.metrics();
    const cm = await (await fetch(`${collector.http}/metrics`)).text();
    const readingsIn =
      metricValue(m1, 'edgeflow_agent_readings_in_total') -
      metricValue(m0, 'edgeflow_agent_readings_in_total');

    const influxLat: number[] = [];
    for (const [k, at] of influxSeen) {
      const start = Number(k.split('@')[1]);
      if (inRange(start)) influxLat.push(at - (start + WINDOW_MS));
    }
    const kafkaLat: number[] = [];
    const alertLat: number[] = [];
    for (const { at, body } of kafkaSeen.values()) {
      if (body.window) {
        if (inRange(body.window.start)) kafkaLat.push(at - body.window.end);
      } else if (typeof body.ts === 'number' && alarmValues.has(body.ts)) alertLat.push(at - body.ts);
    }
    const pi = percentiles(influxLat);
    const pk = percentiles(kafkaLat);
    const pa = percentiles(alertLat);
    const row = {
      config: configName,
      devices,
      publishedPerSec: Math.round(published / elapsed),
      readingsPerSec: Math.round(readingsIn / elapsed),
      windows: `${pi.n}/${pk.n} of ${expected}`,
      'influx p50/p95/p99 ms': `${pi.p50} / ${pi.p95} / ${pi.p99}`,
      'kafka p50/p95/p99 ms': `${pk.p50} / ${pk.p95} / ${pk.p99}`,
      'alert→kafka p50/p99 ms': `${pa.p50} / ${pa.p99} (n=${pa.n})`,
      agentCpuMsPer1kReadings: Math.round((cpu * 1e6) / Math.max(1, readingsIn)) / 1000,
      collectorCpuS: Math.round(collectorCpu * 100) / 100,
      summariesPerSecToKafka: Math.round((countKafka() / Math.max(1, expected)) * devices * 10) / 10,
      checkpoints:
        metricValue(m1, 'edgeflow_agent_checkpoints_total', { result: 'ok' }) -
        metricValue(m0, 'edgeflow_agent_checkpoints_total', { result: 'ok' }),
      load1: load1(),
    };
    return {
      row,
      stages: {
        config: configName,
        devices,
        influx: pi,
        kafka: pk,
        alerts: pa,
        agent: histogram(m1, 'edgeflow_agent_delivery_stage_seconds'),
        collector: histogram(cm, 'edgeflow_collector_delivery_stage_seconds'),
      },
    };
  } finally {
    polling = false;
    if (timer) clearTimeout(timer);
    await poller;
    await pub.endAsync(true).catch(() => undefined);
    await consumer.disconnect().catch(() => undefined);
    await agent.stop('SIGTERM');
    await collector.stop();
    await targets.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchRealtime(): Promise<BenchResult> {
  const seconds = Number(process.env.EDGEFLOW_BENCH_REALTIME_SECONDS ?? 30);
  const configs = (process.env.EDGEFLOW_BENCH_REALTIME_CONFIGS ?? 'old-timing,defaults').split(',');
  const devices = Number(process.env.EDGEFLOW_BENCH_REALTIME_DEVICES ?? 20);
  const x10 = process.env.EDGEFLOW_BENCH_REALTIME_X10 !== '0';
  const rows: Record<string, unknown>[] = [];
  const stages: Record<string, unknown>[] = [];
  for (const c of configs) {
    const r = await runOnce(c.trim(), devices, seconds);
    rows.push(r.row);
    stages.push(r.stages);
  }
  if (x10)
    for (const c of configs) {
      const r = await runOnce(c.trim(), devices * 10, Math.max(10, Math.round(seconds / 3)));
      rows.push(r.row);
      stages.push(r.stages);
    }
  return {
    rows,
    stages,
    notes: [
      `${devices} devices × ${RATE_HZ} Hz (event time = now) + 1 alarm device, via ${services().mosquitto.url}; 1 s tumbling windows, maxOutOfOrder 200ms; ${seconds} s per config (x10 rows: a third)`,
      ...configs.map((c) => `${c}: ${CONFIGS[c.trim()]?.note}`),
      'latency = first seen (InfluxDB polled every 50 ms / kafkajs consumer) − window end; alert = first seen in Kafka − reading ts',
      `command: EDGEFLOW_BENCH_REALTIME_SECONDS=${seconds} EDGEFLOW_BENCH_REALTIME_CONFIGS=${configs.join(',')} node --import tsx bench/realtime.ts`,
    ],
  };
}

if (isMain(import.meta.url)) {
  const res = await benchRealtime();
  printResult('realtime', res);
  console.log(JSON.stringify(res.stages, null, 1));
  process.exit(0);
}
