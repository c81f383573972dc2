// Exponential backoff with full jitter, shared by every source that reconnects (serial, mqtt).
// "Full jitter" (delay = random(0, min(max, min·2^attempt))) spreads reconnect storms after a broker
// restart better than equal jitter; we keep a floor of `minMs` so a flapping port is never hammered.
// Times are monotonic and timers come from the injected Clock (STYLE.md: time is a dependency).
import type { Clock, Timer } from '../../shared/clock.ts';

export interface BackoffOptions {
  /** First and smallest delay, ms. [500] */
  minMs?: number;
  /** Largest delay, ms. [30000] */
  maxMs?: number;
  /** Random source in [0, 1); injectable so tests are deterministic. [Math.random] */
  random?: () => number;
}

export class Backoff {
  readonly minMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.minMs = opts.minMs ?? 500;
    this.maxMs = opts.maxMs ?? 30_000;
    if (!(this.minMs > 0) || !(this.maxMs >= this.minMs)) {
      throw new RangeError(`backoff: need 0 < minMs <= maxMs, got ${this.minMs}, ${this.maxMs}`);
    }
    this.random = opts.random ?? Math.random;
  }

  /** Delay before the next attempt; each call doubles the ceiling until `maxMs`. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(this.minMs + this.random() * (ceiling - this.minMs));
  }

  /** Call after a successful (re)connection. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/**
 * One pending retry at a time: `schedule(fn)` arms a timer for `backoff.next()` ms unless one is already
 * armed; `cancel()` disarms it (on stop). Keeps reconnect loops free of overlapping timers.
 */
export class RetryTimer {
  private timer: Timer | null = null;
  constructor(
    private readonly clock: Clock,
    readonly backoff: Backoff,
  ) {}

  schedule(fn: () => void): number | null {
    if (this.timer) return null;
    const ms = this.backoff.next();
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
    return ms;
  }

  get pending(): boolean {
    return this.timer !== null;
  }

  cancel(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
