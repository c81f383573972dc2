// Issue 14, over MQTT: the agent side by side with the raw transport floor and with the tool users would
// pick instead, all in one run, on the test bed's Mosquitto (loopback):
//
//   raw floor   a plain mqtt.js subscriber (own process) that only counts messages
//   edgeflow    edgeflow-agent (own process, node + tsx as bin/edgeflow-agent.js runs it): mqtt source →
//               json decoder → per-device 10 s tumbling window (count/min/max/mean) → uplink over MQTT
//               back to the same Mosquitto (its summaries are the "MQTT out")
//   Node-RED 4  MQTT in → function node holding a per-device 10 s tumbling window (the flow a user
//               builds: emits a window when the device's next window starts) → MQTT out
//
// The publisher (this process) sends the same N json frames from 1,000 devices as fast as mqtt.js lets it,
// once per consumer, at QoS 0 and at QoS 1 (the consumer subscribes with the same QoS). Throughput =
// N / (time from the first publish to the consumer having taken all N); for the raw subscriber and
// Node-RED the last message seen, for the agent its edgeflow_agent_readings_in_total (polled every
// 50 ms). CPU (user+sys from /proc/<pid>/stat) of each consumer process over the run, per reading: on a
// shared machine CPU is the fair measure, wall-clock rates depend on the load. RSS: VmHWM (peak) and
// VmRSS at the end, from /proc/<pid>/status.
//
// Node-RED is installed by this bench into ~/.cache/edgeflow/node-red (`npm install --prefix`) the first
// time, never as a project dependency; EDGEFLOW_NODE_RED_DIR overrides the place.
//
//   node --import tsx bench/nodered.ts                          (alone)
//   npm run bench -- nodered                                    (through bench/run.ts)
//   EDGEFLOW_BENCH_MQTT_N=200000 EDGEFLOW_BENCH_MQTT_QOS=0,1 EDGEFLOW_BENCH_MQTT_CONSUMERS=raw,agent,nodered
//   EDGEFLOW_BENCH_CPU_PROF=dir     the agent process runs with --cpu-prof, its profile written into dir
import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { metricValue, ROOT, startAgent, tempDir, writeConfig } from '../test/helpers/agent-process.ts';
import { killGroup, spawnTracked } from '../test/helpers/processes.ts';
import { services } from '../test/helpers/services.ts';
import { type BenchResult, isMain, load1, printResult, sleep, waitFor } from './lib.ts';

const DEVICES = 1000;
const WINDOW_MS = 10_000;
const NODE_RED_VERSION = '4';
const PROGRESS_EVERY = 1000;

type Consumer = 'raw' | 'agent' | 'nodered';

interface Run {
  consumer: Consumer;
  qos: 0 | 1;
  readings: number;
  seconds: number;
  perSec: number;
  cpuSeconds: number;
  cpuUsPerReading: number;
  perCpuSec: number;
  peakRssMiB: number;
  endRssMiB: number;
  load1: number;
}

// ---- /proc readings of a consumer process ----

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function statusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
}

// ---- the frames ----

/** N json frames, device-major interleaved (every device once per round), 100 ms event-time steps. */
function frames(n: number, prefix: string): { topic: string; payload: string }[] {
  const t0 = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
  const out: { topic: string; payload: string }[] = [];
  for (let i = 0; i < n; i++) {
    const d = i % DEVICES;
    const round = Math.floor(i / DEVICES);
    const value = Math.round((20 + 5 * Math.sin(round / 10 + d)) * 100) / 100;
    out.push({
      topic: `${prefix}/dev-${d}/temperature`,
      payload: `{"value":${value},"ts":${t0 + round * 100}}`,
    });
  }
  return out;
}

async function publishAll(
  url: string,
  msgs: { topic: string; payload: string }[],
  qos: 0 | 1,
  tag: string,
): Promise<number> {
  const pub = mqtt.connect(url, { clientId: `bench-nr-pub-${tag}`, clean: true });
  await new Promise<void>((resolve, reject) => {
    pub.once('connect', () => resolve());
    pub.once('error', reject);
  });
  const t0 = Date.now();
  // In slices, yielding between them, so the socket drains and the process stays responsive.
  const SLICE = 2000;
  for (let i = 0; i < msgs.length; i += SLICE) {
    const end = Math.min(msgs.length, i + SLICE);
    const last: Promise<unknown>[] = [];
    for (let j = i; j < end; j++) {
      const m = msgs[j]!;
      if (j === end - 1) last.push(pub.publishAsync(m.topic, m.payload, { qos }));
      else pub.publish(m.topic, m.payload, { qos });
    }
    await Promise.all(last);
  }
  await pub.endAsync();
  return t0;
}

// ---- consumers ----

interface Started {
  proc: ChildProcess;
  /** resolves with the time (Date.now) the consumer had taken `n` readings */
  done(n: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

// The raw floor: plain JavaScript, no tsx loader and none of the bench's imports, so its CPU and RSS are
// mqtt.js's own. Prints `ready` once subscribed, then `done <Date.now()>` at the n-th message.
const RAW_SUBSCRIBER = `
import mqtt from 'mqtt';
const [url, topic, qos, n] = process.argv.slice(1);
const c = mqtt.connect(url, { clientId: 'bench-nr-raw-' + process.pid, clean: true });
let count = 0;
process.on('SIGTERM', () => process.exit(0)); // exits normally: a --cpu-prof profile gets written
c.on('message', () => { if (++count === Number(n)) process.stdout.write('done ' + Date.now() + '\\n'); });
c.on('connect', () => c.subscribe(topic, { qos: Number(qos) }, (err) => {
  if (err) throw err;
  process.stdout.write('ready\\n');
}));
`;

/**
 * EDGEFLOW_BENCH_CPU_PROF=dir: the raw subscriber and the agent run with --cpu-prof into dir (a profile
 * each, written when the process exits at stop()).
 */
function cpuProfArgs(): string[] {
  const dir = process.env.EDGEFLOW_BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

async function startRaw(url: string, topic: string, qos: 0 | 1, n: number): Promise<Started> {
  const proc = spawnTracked(
    process.execPath,
    [...cpuProfArgs(), '--input-type=module', '-e', RAW_SUBSCRIBER, url, topic, String(qos), String(n)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  await waitFor(() => out.includes('ready'), 120_000, 'raw subscriber ready');
  return {
    proc,
    done: async (_n, timeoutMs) => {
      await waitFor(() => /done (\d+)/.test(out), timeoutMs, 'raw subscriber to take every message', 20);
      return Number(/done (\d+)/.exec(out)![1]);
    },
    stop: async () => {
      if (process.env.EDGEFLOW_BENCH_CPU_PROF) {
        killGroup(proc, 'SIGTERM');
        await waitFor(
          () => proc.exitCode !== null || proc.signalCode !== null,
          10_000,
          'raw subscriber exit',
        );
      }
      killGroup(proc, 'SIGKILL');
    },
  };
}

async function startEdgeflow(url: string, prefix: string, qos: 0 | 1): Promise<Started> {
  const dir = tempDir('edgeflow-bench-nodered-');
  const agentId = `nr-${process.pid}-${Date.now().toString(36)}`;
  const config = {
    agent: { id: agentId, dataDir: join(dir, 'data') },
    sources: [
      {
        type: 'mqtt',
        name: 'sensors',
        url,
        qos,
        topics: [`${prefix}/+/+`],
        topicPattern: `${prefix}/{device}/{metric}`,
        format: 'json',
      },
    ],
    windows: [
      {
        name: 't10s',
        type: 'tumbling',
        size: '10s',
        match: { metric: 'temperature' },
        aggregates: ['count', 'min', 'max', 'mean'],
      },
    ],
    uplink: { urls: [url] },
    http: { listen: '127.0.0.1:0' },
  };
  const agent = await startAgent(writeConfig(dir, config), {
    bin: [process.execPath, ...cpuProfArgs(), '--import', 'tsx', join(ROOT, 'agent/main.ts')],
  });
  await waitFor(
    async () => {
      const st = await agent.status();
      return st.sources?.sensors?.state === 'up' && st.uplink?.connected === true;
    },
    60_000,
    'agent mqtt source and uplink up',
  );
  return {
    proc: agent.proc,
    done: async (n, timeoutMs) => {
      let at = 0;
      await waitFor(
        async () => {
          const v = metricValue(await agent.metrics(), 'edgeflow_agent_readings_in_total');
          if (v >= n) at = Date.now();
          return v >= n;
        },
        timeoutMs,
        'agent to take every reading',
        50,
      );
      return at;
    },
    stop: async () => {
      await agent.stop('SIGTERM');
    },
  };
}

/** Installs Node-RED into the cache directory the first time; returns the path of red.js. */
export function ensureNodeRed(): string {
  const dir = process.env.EDGEFLOW_NODE_RED_DIR ?? join(homedir(), '.cache/edgeflow/node-red');
  const red = join(dir, 'node_modules/node-red/red.js');
  if (!existsSync(red)) {
    mkdirSync(dir, { recursive: true });
    console.log(`installing node-red@${NODE_RED_VERSION} into ${dir} (once)`);
    execFileSync(
      'npm',
      ['install', '--prefix', dir, '--no-audit', '--no-fund', '--omit=dev', `node-red@${NODE_RED_VERSION}`],
      { stdio: 'inherit' },
    );
  }
  return red;
}

/** The function node: per-device 10 s tumbling window, as a user writes it; output 2 counts progress. */
const windowFunction = (outPrefix: string) => `
const wins = context.get('wins');
const device = msg.topic.split('/')[2];
const p = msg.payload;
const start = p.ts - (p.ts % ${WINDOW_MS});
let w = wins.get(device);
let out = null;
if (w !== undefined && w.start !== start) {
  out = { topic: '${outPrefix}/' + device, payload: { device, start: w.start, end: w.start + ${WINDOW_MS},
    count: w.count, min: w.min, max: w.max, mean: w.sum / w.count } };
  w = undefined;
}
if (w === undefined) {
  w = { start, count: 0, sum: 0, min: Infinity, max: -Infinity };
  wins.set(device, w);
}
w.count++; w.sum += p.value;
if (p.value < w.min) w.min = p.value;
if (p.value > w.max) w.max = p.value;
const n = context.get('n') + 1;
context.set('n', n);
return [out, n % ${PROGRESS_EVERY} === 0 ? { topic: '${outPrefix}/progress', payload: String(n) } : null];
`;

async function startNodeRed(url: string, prefix: string, qos: 0 | 1): Promise<Started> {
  const red = ensureNodeRed();
  const dir = tempDir('edgeflow-bench-nodered-');
  const u = new URL(url);
  const outPrefix = `${prefix}-out`;
  const flows = [
    { id: 'tab1', type: 'tab', label: 'window' },
    {
      id: 'broker1',
      type: 'mqtt-broker',
      broker: u.hostname,
      port: u.port || '1883',
      clientid: '',
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
    },
    {
      id: 'in1',
      type: 'mqtt in',
      z: 'tab1',
      topic: `${prefix}/+/+`,
      qos: String(qos),
      datatype: 'json',
      broker: 'broker1',
      wires: [['fn1']],
    },
    {
      id: 'fn1',
      type: 'function',
      z: 'tab1',
      func: windowFunction(outPrefix),
      outputs: 2,
      initialize: "context.set('wins', new Map());\ncontext.set('n', 0);",
      wires: [['out1'], ['out1']],
    },
    {
      id: 'out1',
      type: 'mqtt out',
      z: 'tab1',
      topic: '',
      qos: '0',
      retain: 'false',
      broker: 'broker1',
      wires: [],
    },
  ];
  writeFileSync(join(dir, 'flows.json'), JSON.stringify(flows));
  writeFileSync(
    join(dir, 'settings.js'),
    `module.exports = { uiPort: 0, uiHost: '127.0.0.1', httpAdminRoot: false, httpNodeRoot: false,
  flowFile: 'flows.json', userDir: ${JSON.stringify(dir)}, credentialSecret: false,
  logging: { console: { level: 'info' } }, editorTheme: { tours: false } };\n`,
  );
  const proc = spawnTracked(
    process.execPath,
    [red, '--settings', join(dir, 'settings.js'), '--userDir', dir],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  // Progress comes back over MQTT (output 2 of the function node, one message per 1,000 readings).
  const watch = mqtt.connect(url, { clientId: `bench-nr-watch-${process.pid}`, clean: true });
  let taken = 0;
  let at = 0;
  watch.on('message', (_t, payload) => {
    const v = Number(payload.toString());
    if (v > taken) {
      taken = v;
      at = Date.now();
    }
  });
  await new Promise<void>((resolve, reject) => {
    watch.once('connect', () =>
      watch.subscribe(`${outPrefix}/progress`, { qos: 0 }, (e) => (e ? reject(e) : resolve())),
    );
    watch.once('error', reject);
  });
  await waitFor(
    () => /Connected to broker/.test(log) || proc.exitCode !== null,
    120_000,
    'Node-RED connected to the broker',
  );
  if (proc.exitCode !== null) throw new Error(`Node-RED exited: ${log.slice(-2000)}`);
  return {
    proc,
    done: async (n, timeoutMs) => {
      await waitFor(() => taken >= n, timeoutMs, 'Node-RED to take every reading', 20);
      return at;
    },
    stop: async () => {
      await watch.endAsync();
      killGroup(proc, 'SIGTERM');
      await sleep(200);
      killGroup(proc, 'SIGKILL');
    },
  };
}

async function runOne(consumer: Consumer, qos: 0 | 1, n: number, url: string): Promise<Run> {
  const tag = `${consumer}${qos}-${process.pid}-${Date.now().toString(36)}`;
  const prefix = `bench-nr/${tag}`;
  const msgs = frames(n, prefix);
  const c =
    consumer === 'raw'
      ? await startRaw(url, `${prefix}/+/+`, qos, n)
      : consumer === 'agent'
        ? await startEdgeflow(url, prefix, qos)
        : await startNodeRed(url, prefix, qos);
  const pid = c.proc.pid!;
  try {
    await sleep(500); // let start-up work settle before the CPU reading
    const cpu0 = cpuSeconds(pid);
    const l0 = load1();
    const t0 = await publishAll(url, msgs, qos, tag);
    const t1 = await c.done(n, 600_000);
    const cpu = cpuSeconds(pid) - cpu0;
    const seconds = (t1 - t0) / 1000;
    return {
      consumer,
      qos,
      readings: n,
      seconds: +seconds.toFixed(2),
      perSec: Math.round(n / seconds),
      cpuSeconds: +cpu.toFixed(2),
      cpuUsPerReading: +((cpu / n) * 1e6).toFixed(2),
      perCpuSec: cpu > 0 ? Math.round(n / cpu) : Number.NaN,
      peakRssMiB: statusMiB(pid, 'VmHWM'),
      endRssMiB: statusMiB(pid, 'VmRSS'),
      load1: Math.round(((l0 + load1()) / 2) * 100) / 100,
    };
  } finally {
    await c.stop();
  }
}

export async function benchNodeRed(): Promise<BenchResult> {
  const n = Number(process.env.EDGEFLOW_BENCH_MQTT_N ?? 200_000);
  const qoss = (process.env.EDGEFLOW_BENCH_MQTT_QOS ?? '0,1').split(',').map((q) => Number(q) as 0 | 1);
  const consumers = (process.env.EDGEFLOW_BENCH_MQTT_CONSUMERS ?? 'raw,agent,nodered').split(
    ',',
  ) as Consumer[];
  const url = services().mosquitto.url;
  if (consumers.includes('nodered')) ensureNodeRed();
  const rows: Run[] = [];
  for (const qos of qoss) for (const c of consumers) rows.push(await runOne(c, qos, n, url));
  const ratios: Record<string, unknown> = {};
  for (const qos of qoss) {
    const raw = rows.find((r) => r.consumer === 'raw' && r.qos === qos);
    for (const r of rows.filter((x) => x.qos === qos && x.consumer !== 'raw')) {
      if (raw)
        ratios[`${r.consumer} qos${qos} / raw floor (readings/s)`] = +(r.perSec / raw.perSec).toFixed(2);
    }
    const a = rows.find((r) => r.consumer === 'agent' && r.qos === qos);
    const nr = rows.find((r) => r.consumer === 'nodered' && r.qos === qos);
    if (a && nr) {
      ratios[`agent / Node-RED qos${qos} (readings/s)`] = +(a.perSec / nr.perSec).toFixed(2);
      ratios[`agent / Node-RED qos${qos} (CPU per reading)`] = +(
        a.cpuUsPerReading / nr.cpuUsPerReading
      ).toFixed(2);
    }
  }
  return {
    rows: rows as unknown as Record<string, unknown>[],
    ratios,
    notes: [
      `${n} json frames from ${DEVICES} devices per consumer and QoS, published by this process to ${url}`,
      'raw: plain mqtt.js subscriber counting messages; agent: edgeflow-agent (node + tsx) with a 10 s tumbling window per device and its uplink to the same broker; Node-RED 4: MQTT in → function node window → MQTT out',
      'cpu: user+sys of the consumer process over the run (/proc/<pid>/stat); RSS: VmHWM (peak) and VmRSS at the end',
      ...Object.entries(ratios).map(([k, v]) => `${k}: ${v}`),
    ],
  };
}

if (isMain(import.meta.url)) {
  printResult('nodered', await benchNodeRed());
  process.exit(0);
}
