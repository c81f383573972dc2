// Shared pieces of the issue-5 end-to-end tests (test/e2e/): the collector and the simulator as real
// processes (each in its own process group, so a failing test still kills everything in `after()`),
// credentials through `edgeflow-collector add-agent`, and read-back of Kafka (kafkajs consumer and kcat),
// InfluxDB 1.x (InfluxQL) and VictoriaMetrics (export API), reduced to the numbers the accounting needs.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { ROOT, tempDir } from '../helpers/agent-process.ts';
import { killGroup, spawnTracked, track } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const TSX = [process.execPath, '--import', 'tsx'];

// Processes go through the shared registry (test/helpers/processes.ts): `killAll()` in after() hooks.
export { killAll, killGroup } from '../helpers/processes.ts';

export function safeId(base: string): string {
  return `${base}-${process.pid}-${Date.now().toString(36)}`.replace(/[^a-zA-Z0-9._-]/g, '-');
}

/** `edgeflow-collector add-agent <id> --credentials FILE` as a process; returns the printed secret. */
export function addAgentCli(agentId: string, credentials: string): string {
  const r = spawnSync(
    TSX[0]!,
    [...TSX.slice(1), join(ROOT, 'collector/main.ts'), 'add-agent', agentId, '--credentials', credentials],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  if (r.status !== 0) throw new Error(`add-agent exited ${r.status}: ${r.stderr}`);
  const secret = r.stdout.trim();
  if (!/^[A-Za-z0-9_-]{20,}$/.test(secret)) throw new Error(`add-agent printed no secret: ${r.stdout}`);
  return secret;
}

export interface CollectorProc {
  proc: ChildProcess;
  http: string;
  /** The fleet console's URL, when the config enables it (issue 15). */
  console?: string;
  /** Log lines of this process (JSON, pino). */
  logFile: string;
  status(): Promise<{ sinks: { name: string; depth: number; lastError: unknown }[] }>;
  metrics(): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `edgeflow-collector run --config FILE` and waits for its ready line on stdout. */
export async function startCollector(configPath: string, logFile: string): Promise<CollectorProc> {
  const proc = spawnTracked(
    TSX[0]!,
    [...TSX.slice(1), join(ROOT, 'collector/main.ts'), 'run', '--config', configPath, '--log-level', 'info'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = createWriteStream(logFile, { flags: 'a' });
  proc.stderr!.pipe(log);
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = once(proc, 'exit');
  const ready = (await Promise.race([
    waitFor('collector ready line', () => (out.includes('\n') ? JSON.parse(out.split('\n')[0]!) : null), {
      timeoutMs: 60_000,
    }),
    exited.then(([code]) => {
      throw new Error(`collector exited with ${code} before it was ready (log: ${logFile})`);
    }),
  ])) as { http: string; console?: string };
  const http = ready.http;
  return {
    proc,
    http,
    ...(ready.console ? { console: ready.console } : {}),
    logFile,
    status: async () =>
      (await (await fetch(`${http}/status`, { signal: AbortSignal.timeout(5000) })).json()) as never,
    metrics: async () => (await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(5000) })).text(),
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc, signal);
      await exited;
    },
  };
}

/** edgeflow-sim in its own process group, registered; `report` resolves with its final report. */
export { type SimProc, startSim } from '../helpers/sim-run.ts';

// ---- InfluxDB 1.x ------------------------------------------------------------------------------

export interface InfluxEndpoint {
  url: string;
  adminUser?: string;
  adminPassword?: string;
}

export async function influxQL(ep: InfluxEndpoint, q: string, db?: string): Promise<any> {
  const url = new URL('/query', ep.url);
  if (db) url.searchParams.set('db', db);
  url.searchParams.set('epoch', 'ms');
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (ep.adminUser)
    headers.authorization = `Basic ${Buffer.from(`${ep.adminUser}:${ep.adminPassword}`).toString('base64')}`;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ q }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`influx ${q}: HTTP ${res.status} ${body}`);
  const json = JSON.parse(body);
  const failed = json.results?.find((r: { error?: string }) => r.error);
  if (failed) throw new Error(`influx ${q}: ${failed.error}`);
  return json;
}

/** Sum of `count` over edgeflow_summary and the number of points (one per series + time). */
export async function influxSummary(
  ep: InfluxEndpoint,
  db: string,
  agent: string,
): Promise<{ sum: number; points: number }> {
  const r = await influxQL(
    ep,
    `SELECT sum("count"), count("count") FROM edgeflow_summary WHERE agent = '${agent}'`,
    db,
  );
  const row = r.results[0]?.series?.[0]?.values?.[0];
  return { sum: Number(row?.[1] ?? 0), points: Number(row?.[2] ?? 0) };
}

// ---- VictoriaMetrics --------------------------------------------------------------------------

/**
 * Summary counts in VictoriaMetrics (series `edgeflow_summary_count`). VictoriaMetrics keeps every
 * sample it was sent (no overwrite on series + time as in InfluxDB), so a re-sent summary or a rev+1
 * shows as a second sample at the same timestamp. A later revision only adds readings, so the largest
 * value per (series, timestamp) is the latest revision: that is what is summed.
 */
export async function victoriaSummary(
  url: string,
  agent: string,
): Promise<{ sum: number; points: number; samples: number }> {
  await fetch(new URL('/internal/force_flush', url), { signal: AbortSignal.timeout(10_000) });
  const u = new URL('/api/v1/export', url);
  u.searchParams.append('match[]', `{__name__="edgeflow_summary_count",agent="${agent}"}`);
  const res = await fetch(u, { signal: AbortSignal.timeout(20_000) });
  const body = await res.text();
  if (!res.ok) throw new Error(`victoria export: HTTP ${res.status} ${body}`);
  let sum = 0;
  let points = 0;
  let samples = 0;
  for (const line of body.split('\n')) {
    if (!line.trim()) continue;
    const s = JSON.parse(line) as { values: number[]; timestamps: number[] };
    const best = new Map<number, number>();
    s.timestamps.forEach((t, i) => {
      samples++;
      best.set(t, Math.max(best.get(t) ?? Number.NEGATIVE_INFINITY, s.values[i]!));
    });
    points += best.size;
    for (const v of best.values()) sum += v;
  }
  return { sum, points, samples };
}

export interface KafkaTopics {
  summaries: string;
  alerts: string;
  status: string;
  late: string;
  deadletter: string;
}

/** One run's own topics (`<prefix>.summaries`, ...): tests sharing the test bed's Kafka never meet. */
export function kafkaTopics(prefix: string): KafkaTopics {
  return {
    summaries: `${prefix}.summaries`,
    alerts: `${prefix}.alerts`,
    status: `${prefix}.status`,
    late: `${prefix}.late`,
    deadletter: `${prefix}.deadletter`,
  };
}

/** The collector's `kafka:` block for those topics (created by the collector at start). */
export function kafkaYaml(brokers: readonly string[], t: KafkaTopics): string {
  return `kafka:
  brokers: [${brokers.map((b) => `"${b}"`).join(', ')}]
  topics: { summaries: "${t.summaries}", alerts: "${t.alerts}", status: "${t.status}", late: "${t.late}", deadletter: "${t.deadletter}" }
`;
}

/** A counting window: every reading of every device in 1 s windows; late ones join as later revisions. */
export const COUNTING_WINDOW = {
  name: 't1s',
  match: { device: '*', metric: '*' },
  type: 'tumbling',
  size: '1s',
  aggregates: ['count'],
  // readings that wait in Mosquitto while the agent restarts arrive late: a long allowedLateness keeps
  // them in their window (a later revision of the summary), so Σ count over latest revisions is exact
  allowedLateness: '10m',
  lateEvents: 'forward',
};

// ---- Kafka ------------------------------------------------------------------------------------

export interface KafkaRec {
  partition: number;
  offset: string;
  key: string | null;
  id: string;
  value: any;
}

/** Reads a topic from the beginning up to its current end (high watermark per partition) with kafkajs. */
export async function readTopic(brokers: string[], topic: string, timeoutMs = 60_000): Promise<KafkaRec[]> {
  const kafka = new Kafka({ clientId: 'edgeflow-e2e-reader', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  try {
    for (const p of await admin.fetchTopicOffsets(topic)) ends.set(p.partition, BigInt(p.high));
  } finally {
    await admin.disconnect();
  }
  const out: KafkaRec[] = [];
  const pending = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  if (pending.size === 0) return out;
  const consumer = kafka.consumer({
    groupId: `edgeflow-e2e-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => {
      resolveDone = r;
    });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const high = ends.get(partition)!;
        if (BigInt(message.offset) >= high) return;
        const idh = message.headers?.['edgeflow-id'];
        out.push({
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          id: idh === undefined ? '' : Buffer.isBuffer(idh) ? idh.toString('utf8') : String(idh),
          value: message.value ? JSON.parse(message.value.toString('utf8')) : null,
        });
        if (BigInt(message.offset) >= high - 1n) {
          pending.delete(partition);
          if (pending.size === 0) resolveDone();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `reading ${topic}: partitions ${[...pending]} not read to the end within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

export interface KafkaAccount {
  records: number;
  /** distinct (edgeflow-id, rev) */
  distinct: number;
  /** records beyond the first copy of an (edgeflow-id, rev): re-sends consumers drop */
  resent: number;
  /** distinct edgeflow-ids */
  ids: number;
  /** sum of `count` over the latest rev per edgeflow-id */
  sum: number;
  /** copies of one (id, rev) that differ in content (must be 0) */
  conflicting: number;
}

export function accountSummaries(recs: KafkaRec[]): KafkaAccount {
  const byIdRev = new Map<string, string>();
  const latest = new Map<string, { rev: number; count: number }>();
  let resent = 0;
  let conflicting = 0;
  for (const r of recs) {
    const v = r.value;
    const key = `${r.id}/${v.rev}`;
    const body = JSON.stringify(v);
    const prev = byIdRev.get(key);
    if (prev !== undefined) {
      resent++;
      if (prev !== body) conflicting++;
      continue;
    }
    byIdRev.set(key, body);
    const l = latest.get(r.id);
    if (!l || v.rev > l.rev) latest.set(r.id, { rev: v.rev, count: v.count });
  }
  let sum = 0;
  for (const l of latest.values()) sum += l.count;
  return { records: recs.length, distinct: byIdRev.size, resent, ids: latest.size, sum, conflicting };
}

/** Reads a topic with kcat (an independent client, librdkafka): `-C -o beginning -e -J`. */
export async function kcatRead(
  brokers: string[],
  topic: string,
): Promise<{ key: string | null; payload: string | null; headers?: string[] }[]> {
  const p = track(
    spawn('kcat', ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-e', '-J', '-q'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  let err = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  p.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const [code] = (await once(p, 'close')) as [number];
  if (code !== 0) throw new Error(`kcat exited ${code}: ${err}`);
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

export function kcatHeader(r: { headers?: string[] }, name: string): string | undefined {
  const h = r.headers ?? [];
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

export function writeText(path: string, text: string): string {
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

export { tempDir };

/** Registers a process started elsewhere (e.g. startAgent) so `killAll()` covers it too. */
export function adopt(p: ChildProcess): ChildProcess {
  return track(p);
}

export async function deleteTopics(brokers: string[], topics: string[]): Promise<void> {
  const admin = new Kafka({ clientId: 'edgeflow-e2e-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics, timeout: 15_000 });
  } finally {
    await admin.disconnect();
  }
}

/** Deletes every VictoriaMetrics series of one agent (cleanup after a passed run). */
export async function victoriaDelete(url: string, agent: string): Promise<void> {
  const u = new URL('/api/v1/admin/tsdb/delete_series', url);
  u.searchParams.append('match[]', `{agent="${agent}"}`);
  const res = await fetch(u, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`victoria delete_series: HTTP ${res.status} ${await res.text()}`);
}
