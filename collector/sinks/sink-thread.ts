// A sink and its runner on their own worker thread (collector.sinkThreads, on by default).
//
// Why: on one thread the collector's throughput was capped by the sinks' client libraries. kafkajs
// spends ~35 µs of CPU per record encoding (measured alone, bench/collector.ts), the InfluxDB leg ~15 µs
// per point, and both ran on the thread that also parses MQTT, validates and spools; PUBACK latency
// grew with every sink step. Here each sink thread reads its own items from the spool through a
// read-only SQLite connection (WAL: readers never block the writer), encodes and writes them. The main
// thread stays the spool's only writer: the thread sends it cursor moves ('advance') and dead letters
// ('deadletter'), in that order, and its metric updates; the main thread sends 'append' wake-ups.
//
// Delivery is unchanged: a cursor moves only after the sink's write succeeded, and the main thread
// deletes rows only up to the lowest cursor it was told, which is never ahead of a thread's own. A
// thread that dies is restarted from the persisted cursor (at-least-once, as after a process crash).
import type { Worker } from 'node:worker_threads';
import type { Clock, Timer } from '../../shared/clock.ts';
import { EdgeflowError, type ErrorCode } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import { startTsWorker } from '../../shared/ts-worker.ts';
import type { CollectorConfig } from '../config.ts';
import type { CollectorMetrics } from '../metrics.ts';
import type { Spool, SpoolEntry } from '../spool/spool.ts';
import type { SinkName } from './from-config.ts';
import type { RunnerMetrics, RunnerOptions, SinkRunnerHandle } from './runner.ts';

export interface SinkThreadInit {
  sink: SinkName;
  config: CollectorConfig;
  spoolPath: string;
  /** The sink's persisted cursor: the thread reads from here. */
  cursor: number;
  runner: RunnerOptions;
  logLevel: string;
}

export type ToSinkThread = { t: 'append' } | { t: 'stop' };

/** [metric, method, labels, value]: one RunnerMetrics call, replayed on the main thread's registry. */
export type MetricOp = [keyof RunnerMetrics, 'inc' | 'set' | 'observe', Record<string, string>, number];

export type FromSinkThread =
  | { t: 'started' }
  | { t: 'startFailed'; message: string; code: string; retriable: boolean }
  | { t: 'advance'; seq: number }
  | { t: 'deadletter'; entries: SpoolEntry[] }
  | { t: 'metrics'; ops: MetricOp[]; lastError: string | null; lastSuccessAt: number | null }
  | { t: 'stopped' };

const ENTRY = new URL('./sink-thread-worker.ts', import.meta.url);
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/**
 * Young generation of a sink thread's V8 heap (MiB; V8 counts three semi-spaces: 16 MiB each). Why:
 * Node 24's V8 sizes it from the machine's RAM, up to 64 MiB per semi-space (128 MiB resident per
 * isolate after one busy minute: --trace-gc, BENCHMARKS.md section 4), where Node 20 stopped at 16.
 * The collector's peak RSS went from 538-568 MiB to 884 MiB with the move to Node 24, most of it this.
 * A sink thread's live data is one batch (a few MiB), so 16 MiB semi-spaces still let nearly all of
 * it die young; smaller ones cost measurably more GC CPU per item.
 */
const SINK_THREAD_YOUNG_GENERATION_MB = 48;

/**
 * SinkRunnerHandle over a sink thread. Time: the restart backoff and the spool age read the injected
 * clock. Two exceptions, on purpose: the runner inside the thread uses the system clock (a clock is
 * functions and cannot cross the thread boundary; the thread shares the machine's clocks), and the stop
 * deadline is real time (a shutdown must end even under a test's fake clock that nobody advances).
 */
export class ThreadedSinkRunner implements SinkRunnerHandle {
  readonly sink: { readonly name: SinkName };
  lastError: string | null = null;
  lastSuccessAt: number | null = null;
  private worker: Worker | null = null;
  private stopping = false;
  private restarts = 0;
  private restartTimer: Timer | null = null;
  private readonly rl: RateLimitedLog;
  private readonly onAppend = () => this.worker?.postMessage({ t: 'append' } satisfies ToSinkThread);

  constructor(
    name: SinkName,
    private readonly config: CollectorConfig,
    private readonly spool: Spool,
    private readonly spoolPath: string,
    private readonly metrics: CollectorMetrics,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly runnerOpts: RunnerOptions,
  ) {
    this.sink = { name };
    this.rl = new RateLimitedLog(log);
  }

  /**
   * Starts the thread and waits until its sink has started. A sink that cannot start for good (e.g.
   * Kafka topics missing with createTopics: false) rejects with its EdgeflowError, as on one thread.
   */
  async start(): Promise<void> {
    this.stopping = false;
    this.spool.on('append', this.onAppend);
    await this.spawn();
  }

  private spawn(): Promise<void> {
    const init: SinkThreadInit = {
      sink: this.sink.name,
      config: this.config,
      spoolPath: this.spoolPath,
      cursor: this.spool.cursor(this.sink.name),
      runner: this.runnerOpts,
      logLevel: this.log.level,
    };
    const w = startTsWorker(ENTRY, init, {
      name: `sink-${this.sink.name}`,
      resourceLimits: { maxYoungGenerationSizeMb: SINK_THREAD_YOUNG_GENERATION_MB },
    });
    this.worker = w;
    // Messages of a thread that was given up on (a failed dead-letter write) are ignored.
    let trusted = true;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      w.on('message', (m: FromSinkThread) => {
        if (!trusted) return;
        switch (m.t) {
          case 'started':
            started = true;
            this.restarts = 0;
            resolve();
            // Items may have arrived while it started.
            w.postMessage({ t: 'append' } satisfies ToSinkThread);
            return;
          case 'startFailed':
            reject(
              new EdgeflowError(m.code as ErrorCode, m.message, {
                retriable: m.retriable,
              }),
            );
            return;
          case 'advance':
            try {
              this.spool.advance(this.sink.name, m.seq);
              this.refreshDepth();
            } catch (e) {
              // Not persisted: the next advance persists a later cursor, or a restart resends (at least once).
              this.rl.warn(
                `advance:${this.sink.name}`,
                { sink: this.sink.name, err: (e as Error).message },
                'cannot persist sink cursor',
              );
            }
            return;
          case 'deadletter':
            try {
              // Structured clone turns Buffers into Uint8Arrays.
              this.spool.append(
                m.entries.map((e) => ({
                  ...e,
                  body: Buffer.from(e.body.buffer, e.body.byteOffset, e.body.length),
                })),
              );
            } catch (e) {
              // The thread already moved its cursor past these items: restart it from the persisted
              // cursor (which its following 'advance' must not move), so they are written or
              // dead-lettered again instead of skipped.
              trusted = false;
              this.log.error(
                { sink: this.sink.name, err: (e as Error).message },
                'cannot store dead letters; restarting the sink thread',
              );
              void w.terminate();
            }
            return;
          case 'metrics':
            for (const [name, method, labels, value] of m.ops) {
              const metric = this.metrics[name] as unknown as Record<
                string,
                (l: Record<string, string>, v: number) => void
              >;
              metric[method]!.call(metric, labels, value);
            }
            this.lastError = m.lastError;
            this.lastSuccessAt = m.lastSuccessAt;
            return;
          case 'stopped':
            return;
        }
      });
      w.on('error', (e) => {
        this.log.error({ sink: this.sink.name, err: e.message, stack: e.stack }, 'sink thread failed');
      });
      w.on('exit', (code) => {
        this.worker = this.worker === w ? null : this.worker;
        if (!started) {
          reject(new EdgeflowError('SINK_UNAVAILABLE', `sink thread ${this.sink.name} exited (${code})`));
          return;
        }
        if (this.stopping) return;
        this.metrics.sinkUp.set({ sink: this.sink.name }, 0);
        this.metrics.sinkErrors.inc({ sink: this.sink.name, code: 'thread_exit' });
        this.lastError = `sink thread exited with code ${code}`;
        const wait = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(this.restarts++, 10));
        this.log.error(
          { sink: this.sink.name, code, restartInMs: wait },
          'sink thread exited; restarting from its persisted cursor',
        );
        this.restartTimer = this.clock.setTimeout(() => {
          this.restartTimer = null;
          if (this.stopping) return;
          this.spawn().catch((e) =>
            this.log.error({ sink: this.sink.name, err: (e as Error).message }, 'sink thread restart failed'),
          );
        }, wait);
      });
    });
  }

  private refreshDepth(): void {
    const d = this.spool.depth(this.sink.name);
    this.metrics.spoolDepth.set({ sink: this.sink.name }, d.items);
    this.metrics.spoolAge.set(
      { sink: this.sink.name },
      d.oldestReceivedAt === null ? 0 : Math.max(0, (this.clock.now() - d.oldestReceivedAt) / 1000),
    );
  }

  updateDepth(): void {
    this.refreshDepth();
  }

  /**
   * Ends the thread at once, wherever it is (a write in flight is abandoned): what a crash of the
   * thread does. The runner restarts it from the persisted cursor. Operators never need this; tests do.
   */
  async terminateThread(): Promise<void> {
    await this.worker?.terminate();
  }

  /** Stops the runner in the thread (a write in progress finishes), closes the sink, ends the thread. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.spool.off('append', this.onAppend);
    if (this.restartTimer) this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.postMessage({ t: 'stop' } satisfies ToSinkThread);
    const t = setTimeout(() => {
      this.log.warn({ sink: this.sink.name }, 'sink thread did not stop in time; terminating it');
      void w.terminate();
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(t);
    this.worker = null;
  }
}
