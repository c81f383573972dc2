// Pieces of the cluster-mode tests and bench (issue 17): ingest nodes and forwarders as real processes
// (own process groups; test/e2e/kit.ts's killAll() covers them), the fleet process, and read-back of
// transactional output topics: a reader that stops at each partition's end even when the last offsets are
// transaction markers (kafkajs reports those batches only through END_BATCH_PROCESS).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { adopt, type KafkaRec, killGroup } from '../e2e/kit.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { waitFor } from '../helpers/wait.ts';

const TSX = [process.execPath, '--import', 'tsx'];

export interface Proc {
  proc: ChildProcess;
  ready: Record<string, unknown> & { http: string };
  logFile: string;
  status(): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<unknown>;
}

/** Spawns `node --import tsx <script> ...args` (own process group), waits for its JSON ready line. */
export async function startProc(
  script: string,
  args: string[],
  logFile: string,
  env: Record<string, string> = {},
): Promise<Proc> {
  const proc = adopt(
    spawn(TSX[0]!, [...TSX.slice(1), join(ROOT, script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    }),
  );
  proc.stderr!.pipe(createWriteStream(logFile, { flags: 'a' }));
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = once(proc, 'exit');
  const ready = (await Promise.race([
    waitFor('ready line', () => (out.includes('\n') ? JSON.parse(out.split('\n')[0]!) : null), {
      timeoutMs: 90_000,
    }),
    exited.then(([code]) => {
      throw new Error(
        `${script} ${args.join(' ')} exited with ${code} before it was ready (log: ${logFile})`,
      );
    }),
  ])) as Proc['ready'];
  return {
    proc,
    ready,
    logFile,
    exited,
    status: async () =>
      (await (await fetch(`${ready.http}/status`, { signal: AbortSignal.timeout(5000) })).json()) as Record<
        string,
        unknown
      >,
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc, signal);
      await exited;
    },
  };
}

export const startIngestNode = (config: string, logFile: string, env: Record<string, string> = {}) =>
  startProc('collector/main.ts', ['run', '--config', config, '--log-level', 'info'], logFile, env);

export const startForwarder = (
  config: string,
  to: 'kafka' | 'influx',
  logFile: string,
  env: Record<string, string> = {},
) =>
  startProc(
    'collector/main.ts',
    ['forward', '--config', config, '--to', to, '--http', '127.0.0.1:0', '--log-level', 'info'],
    logFile,
    env,
  );

/** Committed offsets of `groupId` equal the ingest topic's end on every partition (nothing left to do). */
export async function groupCaughtUp(brokers: string[], groupId: string, topic: string): Promise<boolean> {
  const admin = new Kafka({ clientId: 'edgeflow-cluster-test', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const byP = new Map(committed?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
    return ends.every((e) => BigInt(e.high) === 0n || byP.get(e.partition) === BigInt(e.high));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads a topic to its end (the high watermark when called) as a `read_committed` (default) or
 * `read_uncommitted` consumer. Call it when no transaction is open (the forwarders caught up), else the
 * read_committed end (the last stable offset) is below the high watermark and it times out.
 */
export async function readToEnd(
  brokers: string[],
  topic: string,
  opts: { readUncommitted?: boolean; timeoutMs?: number } = {},
): Promise<KafkaRec[]> {
  const kafka = new Kafka({ clientId: 'edgeflow-cluster-reader', brokers, logLevel: logLevel.NOTHING });
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
    groupId: `edgeflow-cluster-reader-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    readUncommitted: opts.readUncommitted ?? false,
  });
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const reached = (partition: number, lastOffset: string) => {
    if (BigInt(lastOffset) >= ends.get(partition)! - 1n && pending.delete(partition) && pending.size === 0)
      resolveDone();
  };
  // Batches holding only transaction markers or aborted records never reach eachMessage.
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => reached(e.payload.partition, e.payload.lastOffset));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (BigInt(message.offset) >= ends.get(partition)!) return;
        const idh = message.headers?.['edgeflow-id'];
        out.push({
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          id: idh === undefined ? '' : Buffer.isBuffer(idh) ? idh.toString('utf8') : String(idh),
          value: message.value ? JSON.parse(message.value.toString('utf8')) : null,
        });
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`reading ${topic}: partitions ${[...pending]} not read to the end`)),
          opts.timeoutMs ?? 90_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Fleet process (test/cluster/fleet.ts): progress lines parsed as they come. */
export interface FleetProgress {
  generated: number;
  pending: number;
  byUrl: Record<string, number>;
  requeued: number;
  done: boolean;
}

export function startFleet(configFile: string, logFile: string) {
  const proc = adopt(
    spawn(TSX[0]!, [...TSX.slice(1), join(ROOT, 'test/cluster/fleet.ts'), '--config', configFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }),
  );
  proc.stderr!.pipe(createWriteStream(logFile, { flags: 'a' }));
  let last: FleetProgress | null = null;
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      last = JSON.parse(buf.slice(0, i)) as FleetProgress;
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  const exited = once(proc, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`fleet exited with ${code} (log: ${logFile})`);
  });
  exited.catch(() => {});
  return {
    proc,
    exited,
    progress: (): FleetProgress | null => last,
    /** Items acknowledged so far (generated and no longer in an outbox). */
    acked: (): number => (last ? last.generated - last.pending : 0),
  };
}
