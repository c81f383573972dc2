// One runner per sink (Telegraf's RunningOutput: the wrapper owns policy, the sink only does I/O).
// Reads from the sink's spool cursor, writes, advances the cursor past what is done. A retriable
// failure stops the cursor at the first such item and retries with jittered exponential backoff
// (at least the server's Retry-After); permanent failures are dead-lettered through the spool, so the
// Kafka sink ships them to the dead-letter topic. One runner waiting does not hold up another:
// each has its own cursor and the spool keeps items until every cursor has passed them.
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { SpoolEntry, SpoolItem } from '../spool/spool.ts';
import type { Sink, WriteResult } from './sink.ts';

/**
 * What a runner needs of the spool: the Spool itself when the runner runs on the main thread; in a sink
 * thread (sink-thread.ts) a read-only connection for reads, with cursor moves and dead letters sent to
 * the main thread, which owns every write to the spool.
 */
export interface RunnerSpool {
  read(sink: string, limit: number): SpoolItem[];
  advance(sink: string, seq: number): void;
  append(entries: readonly SpoolEntry[]): unknown;
  depth(sink: string): { items: number; oldestReceivedAt: number | null };
  on(event: 'append', fn: () => void): unknown;
  off(event: 'append', fn: () => void): unknown;
}

type SinkLabels = { sink: string };

/** The metrics a runner updates: CollectorMetrics fits; a sink thread forwards them to the main thread. */
export interface RunnerMetrics {
  sinkLatency: { observe(labels: SinkLabels, seconds: number): void };
  deliveryStage: { observe(labels: SinkLabels & { stage: 'sink_written' }, seconds: number): void };
  sinkErrors: { inc(labels: SinkLabels & { code: string }): void };
  sinkWritten: { inc(labels: SinkLabels, n: number): void };
  sinkUp: { set(labels: SinkLabels, v: number): void };
  sinkDropped: { inc(labels: SinkLabels): void };
  spoolDepth: { set(labels: SinkLabels, v: number): void };
  spoolAge: { set(labels: SinkLabels, v: number): void };
}

export interface RunnerOptions {
  batchSize: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Wake up this often even without an 'append' (metrics, safety net). */
  idlePollMs: number;
  /**
   * A write still pending after this long is reported (sink_up 0, sink_errors{code="stalled"}, WARN,
   * lastError) but still awaited: two writes are never in flight for one sink.
   */
  stallWarnMs?: number;
  random?: () => number;
}

/**
 * What the collector holds of a running sink, wherever the sink runs: SinkRunner below (this thread) and
 * ThreadedSinkRunner (sink-thread.ts, its own worker thread) implement it, so collector.ts and the
 * status read one surface instead of a union that agreed only by comment (issue 13 item 5).
 */
export interface SinkRunnerHandle {
  readonly sink: { readonly name: string };
  /** The last write's error, null after a success. */
  readonly lastError: string | null;
  /** Wall time (epoch ms) of the last successful write. */
  readonly lastSuccessAt: number | null;
  /** Starts draining; the threaded runner resolves once its sink has started (a sink that cannot start rejects). */
  start(): Promise<void>;
  /** Refreshes the spool depth/age gauges of this sink. */
  updateDepth(): void;
  /** Stops after the write in progress; nothing acknowledged is lost (the cursor is persisted). */
  stop(): Promise<void>;
}

export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  batchSize: 500,
  minBackoffMs: 200,
  maxBackoffMs: 30_000,
  idlePollMs: 1000,
};

export class SinkRunner implements SinkRunnerHandle {
  private stopped = true;
  private wakeUp: (() => void) | null = null;
  private attempt = 0;
  private loop: Promise<void> | null = null;
  private readonly rl: RateLimitedLog;
  private readonly onAppend = () => this.wake();
  lastError: string | null = null;
  lastSuccessAt: number | null = null;

  constructor(
    readonly sink: Sink,
    private readonly spool: RunnerSpool,
    private readonly metrics: RunnerMetrics,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly opts: RunnerOptions = DEFAULT_RUNNER_OPTIONS,
  ) {
    this.rl = new RateLimitedLog(log);
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.spool.on('append', this.onAppend);
    this.loop = this.run();
  }

  private stopWait: (() => void) | null = null;

  /** Set by 'append'; an idle sleep that starts after new items arrived does not sleep (no lost wake-up). */
  private dirty = false;

  private wake(): void {
    this.dirty = true;
    this.wakeUp?.();
  }

  /** Waits `ms`; an idle wait (`wakeable`) ends early when the spool gets new items, a backoff does not. */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    if (wakeable && this.dirty) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.clock.clearTimeout(t);
        this.wakeUp = null;
        this.stopWait = null;
        resolve();
      };
      const t = this.clock.setTimeout(done, ms);
      this.wakeUp = wakeable ? done : null;
      this.stopWait = done;
    });
  }

  private backoffMs(retryAfterMs: number | undefined): number {
    const exp = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(this.attempt, 20));
    const jittered = exp / 2 + (this.opts.random ?? Math.random)() * (exp / 2); // "equal jitter"
    return Math.max(jittered, Math.min(retryAfterMs ?? 0, 10 * this.opts.maxBackoffMs));
  }

  /** Processes one read from the cursor; returns how long to wait before the next (0 = go on). */
  async step(): Promise<number> {
    const name = this.sink.name;
    this.dirty = false;
    const items = this.spool.read(name, this.sink.batchSize ?? this.opts.batchSize);
    this.updateDepth();
    if (items.length === 0) return this.opts.idlePollMs;
    const t0 = this.clock.monotonic();
    let res: WriteResult;
    try {
      res = await this.watch(this.sink.write(items), items.length);
    } catch (e) {
      // A sink should not throw; if it does, treat the whole batch as retriable (never lose data).
      res = {
        ok: 0,
        failed: items.map((_, index) => ({
          index,
          error: (e as Error).message,
          code: 'exception',
          retriable: true,
        })),
      };
    }
    this.metrics.sinkLatency.observe({ sink: name }, (this.clock.monotonic() - t0) / 1000);
    const failed = [...res.failed].sort((a, b) => a.index - b.index);
    const firstRetriable = failed.find((f) => f.retriable);
    const doneUpTo = firstRetriable ? firstRetriable.index : items.length; // items [0, doneUpTo) are finished
    const permanent = failed.filter((f) => !f.retriable && f.index < doneUpTo);
    if (permanent.length > 0) this.deadLetter(items, permanent);
    for (const f of failed) this.metrics.sinkErrors.inc({ sink: name, code: f.code });
    if (doneUpTo > 0) {
      this.spool.advance(name, items[doneUpTo - 1]!.seq);
      this.metrics.sinkWritten.inc({ sink: name }, doneUpTo - permanent.length);
      // Issue 19, once per write: how long its oldest item waited since it was spooled (wall clock:
      // receivedAt is stored in the spool; the sink thread shares the machine's clock).
      this.metrics.deliveryStage.observe(
        { stage: 'sink_written', sink: name },
        Math.max(0, this.clock.now() - items[0]!.receivedAt) / 1000,
      );
    }
    this.updateDepth();
    if (firstRetriable) {
      this.lastError = `${firstRetriable.code}: ${firstRetriable.error}`;
      this.metrics.sinkUp.set({ sink: name }, 0);
      const wait = this.backoffMs(firstRetriable.retryAfterMs);
      this.attempt++;
      this.rl.warn(
        `sink:${name}`,
        {
          sink: name,
          code: firstRetriable.code,
          err: firstRetriable.error,
          retryInMs: Math.round(wait),
          pending: items.length - doneUpTo,
        },
        'sink write failed; will retry',
      );
      return wait;
    }
    if (this.attempt > 0) this.log.info({ sink: name }, 'sink recovered');
    this.attempt = 0;
    this.lastError = null;
    this.lastSuccessAt = this.clock.now();
    this.metrics.sinkUp.set({ sink: name }, 1);
    return 0;
  }

  private watch(p: Promise<WriteResult>, n: number): Promise<WriteResult> {
    const ms = this.opts.stallWarnMs ?? 120_000;
    const t = this.clock.setTimeout(() => {
      const name = this.sink.name;
      this.lastError = `stalled: a write of ${n} items has been pending for ${ms} ms`;
      this.metrics.sinkUp.set({ sink: name }, 0);
      this.metrics.sinkErrors.inc({ sink: name, code: 'stalled' });
      this.log.warn({ sink: name, items: n, pendingMs: ms }, 'sink write stalled; still waiting for it');
    }, ms);
    return p.finally(() => this.clock.clearTimeout(t));
  }

  private deadLetter(
    items: readonly SpoolItem[],
    failures: { index: number; error: string; code: string }[],
  ): void {
    const name = this.sink.name;
    const entries = [];
    for (const f of failures) {
      const it = items[f.index]!;
      if (it.kind === 'deadletter') {
        // The dead letter itself was refused: this is data loss, an operator must look (ERROR).
        this.metrics.sinkDropped.inc({ sink: name });
        this.log.error(
          { sink: name, agent: it.agent, code: f.code, err: f.error },
          'dead letter refused by sink; dropped',
        );
        continue;
      }
      entries.push({
        kind: 'deadletter' as const,
        agent: it.agent,
        itemId: it.itemId,
        rev: it.rev,
        device: it.device,
        body: it.body,
        error: `SINK_REJECTED ${name}/${f.code}: ${f.error}`.slice(0, 2000),
        dedupKey: null,
        topic: it.topic,
      });
      this.rl.warn(
        `sink_reject:${name}`,
        { sink: name, agent: it.agent, itemId: it.itemId, code: 'SINK_REJECTED', err: f.error },
        'sink refused an item permanently; dead-lettered',
      );
    }
    if (entries.length > 0) this.spool.append(entries);
  }

  updateDepth(): void {
    const d = this.spool.depth(this.sink.name);
    this.metrics.spoolDepth.set({ sink: this.sink.name }, d.items);
    this.metrics.spoolAge.set(
      { sink: this.sink.name },
      d.oldestReceivedAt === null ? 0 : Math.max(0, (this.clock.now() - d.oldestReceivedAt) / 1000),
    );
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let wait: number;
      let idle = false;
      try {
        wait = await this.step();
        idle = this.attempt === 0;
      } catch (e) {
        // Spool read/advance failed (disk): log, back off, keep going.
        this.rl.warn(
          `runner:${this.sink.name}`,
          { sink: this.sink.name, err: (e as Error).message },
          'sink runner step failed',
        );
        wait = this.backoffMs(undefined);
        this.attempt++;
      }
      if (this.stopped) break;
      if (wait > 0) await this.sleep(wait, idle);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.spool.off('append', this.onAppend);
    this.stopWait?.();
    await this.loop;
  }
}
