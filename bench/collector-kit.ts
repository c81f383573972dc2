// What bench/collector.ts and bench/connections.ts share: a collector started as its own process
// (`bin/edgeflow-collector.js run`, so its CPU and RSS are measured apart from the publishers), agent
// credentials made by `addAgent` (what `edgeflow-collector add-agent` calls, production scrypt
// parameters), unique Kafka topics and a unique InfluxDB 1.x database on the test bed, and summary
// batches as the agent's uplink sends them (SPEC.md section 3).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { addAgent, type ScryptParams } from '../shared/credentials.ts';
import { summaryId } from '../shared/ids.ts';
import type { Summary } from '../shared/model.ts';
import { createTopic, influxQuery, services, uniqueName } from '../test/helpers/services.ts';

export const BATCH = 500;

/** A summary as the window engine emits it, ~330 bytes of JSON; `i` makes it unique within a run. */
export function summary(agent: string, i: number, t0: number): Summary {
  const device = `press-${i % 100}`;
  const start = t0 + Math.floor(i / 100) * 10_000;
  const id = summaryId(agent, 'all-10s', device, 'temperature', start);
  return {
    id,
    rev: 0,
    device,
    metric: 'temperature',
    window: { name: 'all-10s', type: 'tumbling', start, end: start + 10_000 },
    count: 10,
    min: 20.1 + (i % 7),
    max: 22.9 + (i % 5),
    mean: 21.4,
    sum: 214,
    stddev: 0.61,
    first: 20.3,
    last: 22.1,
    p50: 21.4,
    p95: 22.6,
    late: 0,
    tags: {},
  };
}

export function batchPayload(agent: string, batchNo: number, items: Summary[]): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, agent, batch: `${agent}-b${batchNo}`, items }));
}

/** Creates `ids` with `addAgent` (the add-agent command's code path) and returns their secrets. */
export async function makeCredentials(
  file: string,
  ids: string[],
  params?: ScryptParams,
): Promise<Record<string, string>> {
  const secrets: Record<string, string> = {};
  for (const id of ids) secrets[id] = (await addAgent(file, id, params)).secret;
  return secrets;
}

export interface BenchTargets {
  topics: { summaries: string; alerts: string; status: string; late: string; deadletter: string };
  db: string;
  drop(): Promise<void>;
}

/** Fresh Kafka topics (created first: the test bed has auto-create off) and a fresh InfluxDB database. */
export async function makeTargets(base: string, partitions = 3): Promise<BenchTargets> {
  const [summaries, alerts, status, late, deadletter] = await Promise.all([
    createTopic(`bench.${base}.summaries`, { partitions }),
    createTopic(`bench.${base}.alerts`),
    createTopic(`bench.${base}.status`),
    createTopic(`bench.${base}.late`),
    createTopic(`bench.${base}.deadletter`),
  ]);
  const db = uniqueName(`bench_${base}`).replace(/[^a-zA-Z0-9_]/g, '_');
  const env = services().influx1;
  await influxQuery(`CREATE DATABASE "${db}"`, { admin: true, db: '' });
  await influxQuery(`GRANT ALL ON "${db}" TO "${env.username}"`, { admin: true, db: '' });
  return {
    topics: { summaries, alerts, status, late, deadletter },
    db,
    async drop() {
      await influxQuery(`DROP DATABASE "${db}"`, { admin: true, db: '' }).catch(() => {});
    },
  };
}

export interface CollectorProcess {
  pid: number;
  mqttPort: number;
  http: string;
  dir: string;
  child: ChildProcess;
  /** Counter/gauge value from /metrics (sum over series matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** CPU seconds (user+sys) the collector process has used so far, from /proc. */
  cpuSeconds(): number;
  /**
   * CPU seconds per thread name (/proc/<pid>/task/<tid>/stat; the main thread is `node`, worker threads
   * are named by Node, libuv's pool `libuv-worker`, V8's `V8 DefaultWorke`), summed over threads of one name.
   */
  threadCpuSeconds(): Record<string, number>;
  rssMiB(): number;
  /** Peak RSS (VmHWM) so far. */
  peakRssMiB(): number;
  stop(): Promise<void>;
}

function procStatus(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
}

/** user + sys CPU-seconds of a process so far, from /proc/<pid>/stat (utime, stime in USER_HZ = 100 ticks). */
export function procCpuSeconds(pid: number | string): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Starts `edgeflow-collector run` with the given sinks; resolves once it printed its ready line. */
export async function startCollectorProcess(opts: {
  agents: string[];
  scrypt?: ScryptParams;
  targets: BenchTargets | null;
  nodeArgs?: string[];
  maxPacketSize?: string;
  /** kafka.client of the collector config (issue 18). [platformatic] */
  kafkaClient?: 'platformatic' | 'kafkajs';
  /** mqtt.authLimits.failuresPerAddress: every bench publisher connects from 127.0.0.1. [collector default] */
  failuresPerAddress?: number;
}): Promise<{ proc: CollectorProcess; secrets: Record<string, string> }> {
  const dir = mkdtempSync(join(process.env.EDGEFLOW_BENCH_DIR ?? tmpdir(), 'edgeflow-bench-collector-'));
  const credentials = join(dir, 'agents.json');
  const secrets = await makeCredentials(credentials, opts.agents, opts.scrypt);
  const env = services();
  const t = opts.targets;
  const sinks = t
    ? `kafka: { client: ${opts.kafkaClient ?? 'platformatic'}, brokers: [${env.kafka.brokers.join(', ')}], createTopics: false, topics: { summaries: ${t.topics.summaries}, alerts: ${t.topics.alerts}, status: ${t.topics.status}, late: ${t.topics.late}, deadletter: ${t.topics.deadletter} } }
influx: { url: ${env.influx1.url}, api: v1, db: ${t.db}, username: ${env.influx1.username}, password: ${env.influx1.password} }`
    : '';
  const cfg = join(dir, 'collector.yaml');
  writeFileSync(
    cfg,
    `collector: { id: bench, dataDir: ${join(dir, 'data')} }
mqtt: { listen: [tcp://127.0.0.1:0], credentials: ${credentials}, maxPacketSize: ${opts.maxPacketSize ?? '1MB'}${opts.failuresPerAddress ? `, authLimits: { failuresPerAddress: ${opts.failuresPerAddress} }` : ''} }
http: { listen: 127.0.0.1:0 }
${sinks}
`,
  );
  const root = join(import.meta.dirname, '..');
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      join(root, 'bin/edgeflow-collector.js'),
      'run',
      '--config',
      cfg,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: root },
  );
  child.stderr!.pipe(createWriteStream(join(dir, 'collector.log')));
  child.stdout!.pipe(createWriteStream(join(dir, 'collector.out')));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ mqtt: { port: number }[]; http: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector not ready in 30 s; log in ${dir}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`collector exited (${code}); log: ${dir}/collector.log`)));
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
  const proc: CollectorProcess = {
    pid,
    mqttPort: ready.mqtt[0]!.port,
    http: ready.http,
    dir,
    child,
    async metric(name, labels = {}) {
      const text = await (await fetch(`${ready.http}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const ls = m[2] ?? '';
        if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
      }
      return sum;
    },
    cpuSeconds: () => procCpuSeconds(pid),
    threadCpuSeconds() {
      const out: Record<string, number> = {};
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
          const name = tid === String(pid) ? 'main' : comm;
          out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
        } catch {} // a thread that ended meanwhile
      }
      return out;
    },
    rssMiB: () => procStatus(pid, 'VmRSS'),
    peakRssMiB: () => procStatus(pid, 'VmHWM'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await once(child, 'exit');
        clearTimeout(t);
      }
      if (!process.env.EDGEFLOW_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
  return { proc, secrets };
}
