// The scheduler: runs the fleet's ticks against the monotonic clock and writes their frames.
// Tick i is due at t0 + i * period. Each wake-up generates every tick that is due (a batch), writes the
// batch and awaits the output (back-pressure), then sleeps until the next tick is due. At 10 kHz this
// is ~10 ticks per timer wake-up instead of 10,000 timers per second, and a late wake-up is caught up
// in the next batch, so the average rate stays exact while single frames jitter by the timer's ~1 ms.
import type { Clock, Timer } from '../shared/clock.ts';
import type { Fleet, Frame } from './fleet.ts';
import type { Output } from './outputs/output.ts';
import { type Report, Tally } from './report.ts';

/** Upper bound of frames generated per batch, so a long stall is caught up in bounded chunks. */
const MAX_BATCH_FRAMES = 5000;

export interface RunOptions {
  /** Ticks to run (from --count, or --duration x rate); null runs until stop(). */
  ticks: number | null;
  endKind: 'count' | 'duration';
  /** Readings per tick at nominal rate (devices x metrics), for the target rate. */
  readingsPerTick: number;
  clock: Clock;
}

export class Runner {
  private stopped = false;
  private wake: (() => void) | null = null;
  private timer: Timer | null = null;

  constructor(
    private readonly fleet: Fleet,
    private readonly output: Output,
    private readonly o: RunOptions,
  ) {}

  /** SIGINT/SIGTERM: stop after the batch being written; held-back frames are dropped, not sent. */
  stop(): void {
    this.stopped = true;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = this.o.clock.setTimeout(resolve, Math.max(0, ms));
    });
  }

  async run(): Promise<Report> {
    const { clock, ticks: total } = this.o;
    const period = this.fleet.periodMs;
    const tally = new Tally();
    const started = clock.monotonic();
    await this.output.open();
    const t0 = clock.monotonic();
    let tick = 0;
    let lastTickAt = t0;
    let maxLag = 0;
    while (!this.stopped && (total === null || tick < total)) {
      const now = clock.monotonic();
      const due = Math.floor((now - t0) / period) + 1;
      const target = total === null ? due : Math.min(due, total);
      if (target <= tick) {
        await this.sleep(t0 + tick * period - now);
        continue;
      }
      const frames: Frame[] = [];
      while (tick < target && frames.length < MAX_BATCH_FRAMES) {
        maxLag = Math.max(maxLag, now - (t0 + tick * period));
        for (const f of this.fleet.tick(tick)) frames.push(f);
        tick++;
      }
      lastTickAt = now;
      await this.output.write(frames, tally);
    }
    let heldBackDiscarded = 0;
    if (this.stopped) heldBackDiscarded = this.fleet.discard();
    else await this.output.write(this.fleet.flush(), tally);
    await this.output.close();
    const end = clock.monotonic();
    // The active span ends one period after the last tick went out: N ticks on time span N periods.
    const activeS = tick > 0 ? (lastTickAt - t0 + period) / 1000 : 0;
    const rate = (n: number) => (activeS > 0 ? Math.round((n / activeS) * 1000) / 1000 : 0);
    const report: Report = {
      sent: { total: tally.readingsSent, byDeviceMetric: tally.byDeviceMetric() },
      readingsSent: tally.readingsSent,
      framesSent: tally.framesSent,
      malformed: tally.malformed,
      duplicates: tally.duplicates,
      outOfOrder: tally.outOfOrder,
      heldBackDiscarded,
      failed: tally.failedFrames,
      durationMs: Math.round(end - started),
      targetRateHz: Math.round(this.o.readingsPerTick * (1000 / period) * 1000) / 1000,
      achievedRateHz: rate(tally.readingsSent),
      achievedFrameRateHz: rate(tally.framesSent),
      maxLagMs: Math.round(maxLag * 10) / 10,
      ticks: tick,
      stoppedBy: this.stopped ? 'signal' : this.o.endKind,
    };
    return report;
  }
}
