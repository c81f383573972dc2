// `npm run demo` after scripts/demo.sh has installed dependencies and started the services: writes the
// demo's configs and credentials under .demo/, starts collector, agent, socat and three simulators
// (serial pty, Mosquitto, the agent's embedded broker), and redraws a live view every second until
// Ctrl-C (or DEMO_DURATION). Then it stops everything it started and prints how to look at the data.
// SIGTERM and SIGHUP (its terminal closed) stop it the same way (issue 12, item 7: a closed terminal
// left six processes holding their ports); a demo that died anyway is cleaned up after by the next one
// in the same directory, through the pid files its children leave there (pidfiles.ts).
//
// Plain ANSI (clear screen, home, redraw): the view is a dozen lines refreshed once a second, which
// needs no TUI library. Without a TTY (or with DEMO_PLAIN=1) it prints one key=value line per second.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseDuration } from '../../shared/units.ts';
import { type Child, Children, lastLogLine } from './children.ts';
import { clearLeftovers, processStart } from './pidfiles.ts';
import { getJson, getText, type InfluxTarget, influxScalar, KafkaProbe, promBy, promSum } from './probe.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = process.env.DEMO_DIR ?? join(ROOT, '.demo');
const AGENT_ID = process.env.DEMO_AGENT ?? 'demo-gw-1';
const DURATION_MS = process.env.DEMO_DURATION ? parseDuration(process.env.DEMO_DURATION) : null;
const PLAIN = process.env.DEMO_PLAIN === '1' || process.argv.includes('--plain') || !process.stdout.isTTY;
const NODE = process.execPath;
const TOPICS = { summaries: 'edgeflow.summaries', alerts: 'edgeflow.alerts', status: 'edgeflow.status' };

interface ServicesEnv {
  kafka: { brokers: string[] };
  influx1: { url: string; db: string; username: string; password: string };
  mosquitto: { url: string };
}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Thrown by `until` when a signal asked the demo to stop while it was starting. */
class StopRequested extends Error {}

/**
 * Polls `probe` until it returns a value; throws naming `what` (and a dead child's log) at the deadline,
 * or StopRequested once a signal has arrived.
 */
async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined> | T | null | undefined,
  timeoutMs: number,
  watch: Child[] = [],
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (stopping) throw new StopRequested(`stopped while waiting for ${what}`);
    const v = await probe();
    if (v !== null && v !== undefined) return v;
    const dead = watch.find((c) => c.exited !== null);
    if (dead)
      throw new Error(
        `${dead.name} exited (${dead.exited}) while waiting for ${what}: ${lastLogLine(dead.logFile)}`,
      );
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(100);
  }
}

// scripts/services.sh writes its endpoints under EDGEFLOW_SERVICES_DIR when set (a worktree sharing
// another checkout's services), .services/ otherwise.
const SERVICES_DIR = process.env.EDGEFLOW_SERVICES_DIR ?? join(ROOT, '.services');
const env = JSON.parse(readFileSync(join(SERVICES_DIR, 'env.json'), 'utf8')) as ServicesEnv;
const influx: InfluxTarget = { ...env.influx1 };
const children = new Children(DIR);
const kafka = new KafkaProbe(env.kafka.brokers);
const t0 = Date.now();
const runId = `${process.pid}-${t0.toString(36)}`;

// Installed before anything else happens: a signal that comes while the demo clears leftovers or
// starts its children stops it the same way (`until` gives up at once).
let stopping = false;
let stopRequested: (() => void) | null = null;
const stopSignal = new Promise<void>((r) => {
  stopRequested = r;
});
// After SIGHUP the terminal is gone: writes to it fail (EIO), which must not end the demo before it
// has stopped its children. Nothing else is ever written to these streams that could be lost.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
const onSignal = (sig: string) => {
  if (stopping) {
    out(`\n${sig} again: stopping is under way (children get SIGKILL after 10 s)`);
    return;
  }
  stopping = true;
  stopRequested?.();
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));

// ---- files --------------------------------------------------------------------------------------

// One demo per directory: a second `npm run demo` would wipe the first one's files under it. demo.pid
// holds the demo's pid and start time (a pid reused by another process is not taken for a demo).
const PIDFILE = join(DIR, 'demo.pid');
const [otherPid, otherStart] = existsSync(PIDFILE) ? readFileSync(PIDFILE, 'utf8').trim().split(' ') : [];
const other = Number(otherPid ?? 0);
if (
  other > 0 &&
  other !== process.pid &&
  processStart(other) !== null &&
  processStart(other) === otherStart
) {
  process.stderr.write(
    `demo: another demo (pid ${other}) is running in ${DIR}; stop it first, or set DEMO_DIR\n`,
  );
  process.exit(1);
}
// An earlier demo here that died without stopping its children (SIGKILL, a crash) left their pid files.
const leftovers = await clearLeftovers(DIR);
if (leftovers.length > 0)
  process.stderr.write(
    `demo: stopped what an earlier demo in ${DIR} left running: ${leftovers.map((r) => `${r.name}=${r.pid}`).join(' ')}\n`,
  );
rmSync(DIR, { recursive: true, force: true });
const LOGS = join(DIR, 'logs');
mkdirSync(LOGS, { recursive: true });
writeFileSync(PIDFILE, `${process.pid} ${processStart(process.pid)}\n`);
const paths = {
  credentials: join(DIR, 'agents.json'),
  agentSecret: join(DIR, 'agent-secret'),
  sensorSecret: join(DIR, 'sensor-secret'),
  influxPassword: join(DIR, 'influx-password'),
  collectorConfig: join(DIR, 'collector.yaml'),
  agentConfig: join(DIR, 'agent.yaml'),
  ttyA: join(DIR, 'tty-sim'),
  ttyB: join(DIR, 'tty-agent'),
};
writeFileSync(paths.influxPassword, `${influx.password}\n`, { mode: 0o600 });
// The secret is printed once by add-agent; the agent reads it from a file (uplink.passwordFile).
const secret = execFileSync(
  NODE,
  ['bin/edgeflow-collector.js', 'add-agent', AGENT_ID, '--credentials', paths.credentials],
  {
    cwd: ROOT,
    encoding: 'utf8',
  },
).trim();
writeFileSync(paths.agentSecret, `${secret}\n`, { mode: 0o600 });
// The dock sensors log in to the agent's embedded broker (closed to anonymous sensors by default).
writeFileSync(paths.sensorSecret, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });

// Kafka topics: the collector creates the ones it needs at start (kafka.createTopics defaults to true;
// the test bed's broker has auto.create disabled), so the demo does not.
writeFileSync(
  paths.collectorConfig,
  stringify({
    collector: { id: 'demo-central', dataDir: join(DIR, 'collector-data') },
    mqtt: { listen: ['tcp://127.0.0.1:0'], credentials: paths.credentials },
    kafka: { brokers: env.kafka.brokers, topics: { ...TOPICS }, createTopics: true },
    influx: {
      url: influx.url,
      api: 'v1',
      db: influx.db,
      username: influx.username,
      passwordFile: paths.influxPassword,
    },
    http: { listen: '127.0.0.1:0' },
  }),
);

const collectorArgv = [NODE, 'bin/edgeflow-collector.js', 'run', '--config', paths.collectorConfig];
const mqttPrefix = `edgeflow-demo/${runId}/plant`;

function agentConfig(collectorPort: number, httpPort: number, brokerPort: number) {
  return {
    agent: { id: AGENT_ID, dataDir: join(DIR, 'agent-data') },
    sources: [
      { type: 'serial', name: 'line-a', path: paths.ttyB, baudRate: 115200, format: 'json' },
      {
        type: 'mqtt',
        name: 'floor',
        url: env.mosquitto.url,
        topics: [`${mqttPrefix}/+/+`],
        topicPattern: `${mqttPrefix}/{device}/{metric}`,
        format: 'number',
      },
      {
        type: 'mqtt-broker',
        name: 'dock',
        listen: `127.0.0.1:${brokerPort}`,
        topicPattern: 'sensors/{device}/{metric}',
        format: 'number',
        username: 'dock',
        passwordFile: paths.sensorSecret,
      },
    ],
    watermark: { maxOutOfOrder: '1s', idleTimeout: '5s' },
    windows: [
      {
        name: 'all-10s',
        match: { device: '*', metric: '*' },
        type: 'tumbling',
        size: '10s',
        allowedLateness: '5s',
        lateEvents: 'forward',
      },
      {
        name: 'vib-30s-hop',
        match: { metric: 'vibration' },
        type: 'hopping',
        size: '30s',
        slide: '10s',
        aggregates: ['count', 'mean', 'max', 'p95'],
      },
    ],
    rules: [
      {
        name: 'hot',
        match: { metric: 'temperature' },
        on: 'window:all-10s',
        kind: 'threshold',
        when: 'max > 26',
        severity: 'warning',
      },
      // The anomaly kind (issue 11) on every metric, its spans compressed for a demo that lasts
      // minutes: the production defaults (warm-up 1d, short 30m, long 7d, cooldown 6h) would not
      // score before the demo ends. The same config at real-world scale is deploy/agent/agent.yaml.
      {
        name: 'sensor-anomaly',
        kind: 'anomaly',
        warmup: '30s',
        minSamples: 50,
        fast: '3s',
        slow: '30s',
        errorSpan: '1m',
        shortSpan: '5s',
        longSpan: '5m',
        cooldown: '30s',
        severity: 'warning',
      },
      { name: 'stuck', match: { metric: 'temperature' }, kind: 'flatline', for: '3s', severity: 'warning' },
      { name: 'silent', kind: 'missing', after: '4s', severity: 'critical' },
    ],
    uplink: {
      urls: [`mqtt://127.0.0.1:${collectorPort}`],
      username: AGENT_ID,
      passwordFile: paths.agentSecret,
      batch: { maxItems: 500, maxDelay: '500ms' },
      statusInterval: '2s',
    },
    checkpoint: { interval: '1s' },
    http: { listen: `127.0.0.1:${httpPort}` },
  };
}

// Faults in every stream: anomalies (labelled), malformed frames, late (out-of-order) frames.
const FAULTS = [
  '--anomalies',
  'spike,step,drift,stuck,dropout',
  '--anomaly-rate',
  '240',
  '--malformed',
  '0.02',
  '--log-level',
  'warn',
];

// ---- start --------------------------------------------------------------------------------------

interface Endpoints {
  collectorHttp: string;
  collectorPort: number;
  agentHttp: string;
  brokerPort: number;
}

async function startAll(): Promise<Endpoints> {
  const log = (s: string) => process.stderr.write(`demo: ${s}\n`);

  const socat = children.start(
    'socat',
    ['socat', '-d', '-d', `pty,raw,echo=0,link=${paths.ttyA}`, `pty,raw,echo=0,link=${paths.ttyB}`],
    join(LOGS, 'socat.log'),
    { cwd: ROOT },
  );
  await until('socat pty pair', () => (existsSync(paths.ttyA) && existsSync(paths.ttyB)) || null, 10_000, [
    socat,
  ]);

  log('starting collector');
  const collector = children.start('collector', collectorArgv, join(LOGS, 'collector.log'), {
    cwd: ROOT,
    pipeStdout: true,
  });
  let stdout = '';
  collector.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  const ready = await until(
    'the collector ready line',
    () => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      return line ? (JSON.parse(line) as { mqtt: { port: number }[]; http: string }) : null;
    },
    60_000,
    [collector],
  );
  const collectorPort = ready.mqtt[0]!.port;

  const [httpPort, brokerPort] = [await freePort(), await freePort()];
  writeFileSync(paths.agentConfig, stringify(agentConfig(collectorPort, httpPort, brokerPort)));
  log('starting agent');
  const agent = children.start(
    'agent',
    [NODE, 'bin/edgeflow-agent.js', 'run', '--config', paths.agentConfig],
    join(LOGS, 'agent.log'),
    { cwd: ROOT },
  );
  const agentHttp = `http://127.0.0.1:${httpPort}`;
  await until(
    'agent sources up',
    async () => {
      const st = await getJson<{ sources: Record<string, { state: string }> }>(`${agentHttp}/status`);
      return st &&
        Object.values(st.sources).length === 3 &&
        Object.values(st.sources).every((s) => s.state === 'up')
        ? true
        : null;
    },
    60_000,
    [agent],
  );

  log('starting simulators');
  const sim = (name: string, args: string[]) =>
    children.start(
      name,
      [NODE, 'bin/edgeflow-sim.js', '--seed', `${name}-${runId}`, ...args, ...FAULTS],
      join(LOGS, `${name}.log`),
      { cwd: ROOT },
    );
  // Serial: json frames, some late: behind the watermark but within allowedLateness (the window is
  // re-emitted as rev+1) or beyond it (counted, forwarded raw to edgeflow.late).
  sim('sim-serial', [
    '--serial',
    paths.ttyA,
    '--devices',
    '3',
    '--device-prefix',
    'press-',
    '--metrics',
    'temperature,vibration',
    '--rate',
    '5',
    '--format',
    'json',
    '--out-of-order',
    '0.05',
    '--max-delay',
    '8s',
  ]);
  // Mosquitto → the agent's mqtt source.
  sim('sim-mqtt', [
    '--mqtt',
    env.mosquitto.url,
    '--topic-pattern',
    `${mqttPrefix}/{device}/{metric}`,
    '--devices',
    '2',
    '--device-prefix',
    'floor-',
    '--metrics',
    'current,humidity',
    '--rate',
    '2',
    '--format',
    'number',
  ]);
  // Sensors publishing straight to the agent's embedded broker.
  sim('sim-broker', [
    '--mqtt',
    `mqtt://127.0.0.1:${brokerPort}`,
    '--topic-pattern',
    'sensors/{device}/{metric}',
    '--devices',
    '2',
    '--device-prefix',
    'dock-',
    '--metrics',
    'temperature',
    '--rate',
    '2',
    '--format',
    'number',
    '--mqtt-username',
    'dock',
    '--mqtt-password-file',
    paths.sensorSecret,
  ]);
  // "Up" means readings are flowing (a bounded run's clock starts here, so a slow start on a busy
  // machine does not eat into the time the first windows need to close).
  await until(
    'the first readings at the agent',
    async () =>
      promSum((await getText(`${agentHttp}/metrics`)) ?? '', 'edgeflow_agent_readings_in_total') > 0
        ? true
        : null,
    60_000,
    children.list,
  );
  return { collectorHttp: ready.http, collectorPort, agentHttp, brokerPort };
}

// ---- view ---------------------------------------------------------------------------------------

/** The parts of the agent's /status the view reads. */
interface AgentStatus {
  outbox?: { items?: number; bytes?: number };
  windows?: { emitted?: number; reemitted?: number; openWindows?: number };
  rules?: { alertsFired?: number; alertsResolved?: number };
  firing?: { rule: string; device: string; metric: string }[];
  uplink?: {
    connected?: boolean;
    url?: string | null;
    lastError?: string | null;
    batchesSent?: number;
  } | null;
}

interface Snapshot {
  at: number;
  readings: number;
  bySource: Record<string, number>;
  badFrames: number;
  late: number;
  windowsClosed: number;
  reemitted: number;
  openWindows: number;
  alertsFired: number;
  alertsResolved: number;
  firing: string[];
  outboxItems: number | null;
  outboxBytes: number;
  uplink: string;
  batchesSent: number;
  collectorAgents: number | null;
  collectorBatches: number;
  itemsIn: Record<string, number>;
  spoolDepth: Record<string, number>;
  sinkWritten: Record<string, number>;
  sinkErrors: number;
  kafka: Record<string, number | null>;
  influx: { summaries: number | null; alerts: number | null; status: number | null };
}

const since = `time >= ${t0 - 60_000}ms`; // a 30 s hopping window may start before the demo did
const who = `"agent" = '${AGENT_ID.replace(/'/g, "\\'")}'`;

async function snapshot(ep: Endpoints, kafkaBase: Record<string, number>): Promise<Snapshot> {
  const [st, am, cm, ks, ka, kst, is, ia, ist] = await Promise.all([
    getJson<AgentStatus>(`${ep.agentHttp}/status`),
    getText(`${ep.agentHttp}/metrics`),
    getText(`${ep.collectorHttp}/metrics`),
    kafka.offsets(TOPICS.summaries),
    kafka.offsets(TOPICS.alerts),
    kafka.offsets(TOPICS.status),
    influxScalar(influx, `SELECT count("count") FROM "edgeflow_summary" WHERE ${who} AND ${since}`),
    influxScalar(influx, `SELECT count("state") FROM "edgeflow_alert" WHERE ${who} AND ${since}`),
    influxScalar(influx, `SELECT count("outbox_items") FROM "edgeflow_agent" WHERE ${who} AND ${since}`),
  ]);
  const delta = (v: number | null, k: string) => (v === null ? null : v - (kafkaBase[k] ?? 0));
  const a = am ?? '';
  const c = cm ?? '';
  const firing = ((st?.firing ?? []) as { rule: string; device: string; metric: string }[]).map(
    (f) => `${f.rule}(${f.device}/${f.metric})`,
  );
  const up = st?.uplink as
    | { connected?: boolean; url?: string; lastError?: string; batchesSent?: number }
    | null
    | undefined;
  return {
    at: Date.now(),
    readings: promSum(a, 'edgeflow_agent_readings_in_total'),
    bySource: promBy(a, 'edgeflow_agent_readings_in_total', 'source'),
    badFrames: promSum(a, 'edgeflow_agent_bad_frames_total'),
    late: promSum(a, 'edgeflow_agent_late_events_total'),
    windowsClosed: st?.windows?.emitted ?? 0,
    reemitted: st?.windows?.reemitted ?? 0,
    openWindows: st?.windows?.openWindows ?? 0,
    alertsFired: st?.rules?.alertsFired ?? 0,
    alertsResolved: st?.rules?.alertsResolved ?? 0,
    firing,
    outboxItems: st ? (st.outbox?.items ?? 0) : null,
    outboxBytes: st?.outbox?.bytes ?? 0,
    uplink: !st
      ? 'agent down'
      : up?.connected
        ? `connected ${up.url ?? ''}`
        : `down${up?.lastError ? ` (${up.lastError})` : ''}`,
    batchesSent: up?.batchesSent ?? 0,
    collectorAgents: cm === null ? null : promSum(c, 'edgeflow_collector_connected_agents'),
    collectorBatches: promSum(c, 'edgeflow_collector_batches_total'),
    itemsIn: promBy(c, 'edgeflow_collector_items_total', 'kind'),
    spoolDepth: promBy(c, 'edgeflow_collector_spool_depth_items', 'sink'),
    sinkWritten: promBy(c, 'edgeflow_collector_sink_written_total', 'sink'),
    sinkErrors: promSum(c, 'edgeflow_collector_sink_errors_total'),
    kafka: { summaries: delta(ks, 'summaries'), alerts: delta(ka, 'alerts'), status: delta(kst, 'status') },
    influx: { summaries: is, alerts: ia, status: ist },
  };
}

const fmt = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : String(Math.round(v * 10) / 10);
const kv = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ') || '-';
const bytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`;

function rate(now: Snapshot, prev: Snapshot | null, f: (s: Snapshot) => number): number {
  if (!prev || now.at <= prev.at) return 0;
  return ((f(now) - f(prev)) * 1000) / (now.at - prev.at);
}

function render(s: Snapshot, prev: Snapshot | null, ep: Endpoints): string[] {
  const elapsed = Math.round((s.at - t0) / 1000);
  const procs = children.list
    .map((c) => `${c.name} ${c.exited === null ? 'up' : `EXITED(${c.exited})`}`)
    .join('  ');
  const srcRates = Object.keys(s.bySource)
    .map((k) => `${k} ${fmt(rate(s, prev, (x) => x.bySource[k] ?? 0))}/s`)
    .join(', ');
  const lines = [
    `edgeflow demo  ${elapsed}s  ${DURATION_MS ? `(ends after ${DURATION_MS / 1000}s)` : 'Ctrl-C stops everything'}   logs: ${LOGS}`,
    '',
    `processes   ${procs}`,
    ...children.dead().map((c) => `  !! ${c.name} exited ${c.exited}: ${lastLogLine(c.logFile)}`),
    '',
    `AGENT ${AGENT_ID}  ${ep.agentHttp}`,
    `  readings in      ${s.readings} total, ${fmt(rate(s, prev, (x) => x.readings))}/s  (${srcRates || '-'})`,
    `  bad frames       ${s.badFrames}    late beyond allowedLateness ${s.late} (forwarded raw)`,
    `  windows closed   ${s.windowsClosed} (re-emitted ${s.reemitted}), open ${s.openWindows}`,
    `  alerts           fired ${s.alertsFired}, resolved ${s.alertsResolved}; firing now: ${s.firing.length ? s.firing.slice(0, 6).join(', ') + (s.firing.length > 6 ? ` +${s.firing.length - 6}` : '') : '-'}`,
    `  outbox           ${fmt(s.outboxItems)} items, ${bytes(s.outboxBytes)}`,
    `  uplink           ${s.uplink}, ${s.batchesSent} batches sent`,
    '',
    `COLLECTOR  ${ep.collectorHttp}  (MQTT on 127.0.0.1:${ep.collectorPort})`,
    `  agents connected ${fmt(s.collectorAgents)}    batches in ${s.collectorBatches}    items in: ${kv(s.itemsIn)}`,
    `  spool depth      ${kv(s.spoolDepth)}    written: ${kv(s.sinkWritten)}    sink errors ${s.sinkErrors}`,
    '',
    `KAFKA ${env.kafka.brokers.join(',')}  records this run: ${Object.entries(s.kafka)
      .map(([k, v]) => `${TOPICS[k as keyof typeof TOPICS]} ${fmt(v)}`)
      .join('   ')}`,
    `INFLUXDB ${influx.url} db ${influx.db}  rows (agent ${AGENT_ID}): edgeflow_summary ${fmt(s.influx.summaries)}   edgeflow_alert ${fmt(s.influx.alerts)}   edgeflow_agent ${fmt(s.influx.status)}`,
  ];
  return lines;
}

function plainLine(s: Snapshot, prev: Snapshot | null): string {
  const dead = children.dead().map((c) => `${c.name}:${c.exited}`);
  return [
    `t=${Math.round((s.at - t0) / 1000)}s`,
    `readings=${s.readings}`,
    `readings_per_s=${fmt(rate(s, prev, (x) => x.readings))}`,
    `bad_frames=${s.badFrames}`,
    `late=${s.late}`,
    `windows_closed=${s.windowsClosed}`,
    `alerts_fired=${s.alertsFired}`,
    `firing=${s.firing.join(',') || '-'}`,
    `outbox=${fmt(s.outboxItems)}`,
    `uplink=${s.uplink.startsWith('connected') ? 'connected' : 'down'}`,
    `collector_batches=${s.collectorBatches}`,
    `collector_items=${Object.values(s.itemsIn).reduce((x, y) => x + y, 0)}`,
    `kafka_summaries=${fmt(s.kafka.summaries)}`,
    `kafka_alerts=${fmt(s.kafka.alerts)}`,
    `influx_summaries=${fmt(s.influx.summaries)}`,
    `influx_alerts=${fmt(s.influx.alerts)}`,
    `influx_status=${fmt(s.influx.status)}`,
    `dead=${dead.join(',') || '-'}`,
  ].join(' ');
}

// ---- main ---------------------------------------------------------------------------------------

async function shutdown(): Promise<void> {
  // Sources first (the agent then closes its windows' inputs), agent next (SIGTERM: checkpoint, drain
  // the outbox for up to 3 s), collector last (its sinks finish what the agent delivered).
  await children.stopAll(['sim-', 'socat', 'agent', 'collector']);
}

async function main(): Promise<number> {
  let ep: Endpoints;
  try {
    ep = await startAll();
  } catch (e) {
    const requested = e instanceof StopRequested;
    process.stderr.write(
      `demo: ${requested ? 'stopping during start' : 'start failed'}: ${(e as Error).message}\n`,
    );
    await shutdown();
    await kafka.close();
    return requested ? 0 : 1;
  }
  const kafkaBase: Record<string, number> = {};
  for (const [k, t] of Object.entries(TOPICS)) kafkaBase[k] = (await kafka.offsets(t)) ?? 0;
  process.stderr.write(
    `demo: up in ${((Date.now() - t0) / 1000).toFixed(1)}s; children: ${children.list.map((c) => `${c.name}=${c.proc.pid}`).join(' ')}\n`,
  );
  process.stderr.write(
    `demo: ports: collector-mqtt=${ep.collectorPort} collector-http=${new URL(ep.collectorHttp).port} agent-http=${new URL(ep.agentHttp).port} agent-broker=${ep.brokerPort}\n`,
  );

  const viewStart = Date.now();
  const ended = DURATION_MS === null ? stopSignal : Promise.race([stopSignal, delay(DURATION_MS)]);
  let done = false;
  void ended.then(() => {
    done = true;
  });
  let prev: Snapshot | null = null;
  let last: Snapshot | null = null;
  while (!done) {
    const tick = Date.now();
    const s = await snapshot(ep, kafkaBase);
    if (done) break;
    if (PLAIN) out(plainLine(s, prev));
    else process.stdout.write(`\x1b[2J\x1b[H${render(s, prev, ep).join('\n')}\n`);
    prev = s;
    last = s;
    await Promise.race([ended, delay(Math.max(0, 1000 - (Date.now() - tick)))]);
  }
  const diedDuringRun = children.dead();
  out('');
  out(
    `demo: stopping (${stopping ? 'signal' : 'duration reached'} after ${Math.round((Date.now() - viewStart) / 1000)}s): simulators, agent, collector ...`,
  );
  await shutdown();
  // Once the collector has stopped, what landed in Kafka and InfluxDB is final; the agent's and the
  // collector's own numbers are those of the last snapshot before they stopped.
  const after = await snapshot(ep, kafkaBase);
  await kafka.close();
  const final: Snapshot = last ? { ...last, at: after.at, kafka: after.kafka, influx: after.influx } : after;
  out(`final: ${plainLine(final, null)}`);
  for (const c of diedDuringRun)
    out(
      `demo: ${c.name} exited during the run (${c.exited}): ${lastLogLine(c.logFile)}  (log: ${c.logFile})`,
    );
  const q = `SELECT * FROM edgeflow_summary WHERE agent='${AGENT_ID}' ORDER BY time DESC LIMIT 5`;
  out('');
  out('Look at the data:');
  out(`  kcat -C -b ${env.kafka.brokers[0]} -t ${TOPICS.summaries} -o -5 -e`);
  out(`  kcat -C -b ${env.kafka.brokers[0]} -t ${TOPICS.alerts} -o -5 -e`);
  out(
    `  influx -host 127.0.0.1 -port ${new URL(influx.url).port} -username ${influx.username} -password ${influx.password} -database ${influx.db} -execute "${q}"`,
  );
  out(
    `  curl -sG -u ${influx.username}:${influx.password} '${influx.url}/query' --data-urlencode 'db=${influx.db}' --data-urlencode "q=${q}"`,
  );
  out(`  configs, credentials and logs: ${DIR}`);
  return diedDuringRun.length ? 1 : 0;
}

// Whatever goes wrong in the demo itself, the children are stopped before it exits.
const code = await main().catch(async (e: unknown) => {
  process.stderr.write(`demo: ${(e as Error).stack ?? e}\n`);
  await shutdown();
  return 1;
});
process.exit(code);
