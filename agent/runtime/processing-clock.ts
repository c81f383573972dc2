// Processing time that stands still while the runtime is not taking input (back-pressure pause).
//
// Windows advance an idle device's watermark after `watermark.idleTimeout` of monotonic time without
// readings, and some rules (missing, flatline) measure silence the same way. While the runtime has paused
// its MQTT sources, readings are not missing — they wait in the broker. With the plain monotonic clock a
// pause longer than idleTimeout closed the windows, and the queued readings arrived late and were dropped
// (found by test/agent/overload.test.ts: 310 of 7200 readings lost). The engines get this clock instead:
// its monotonic() excludes paused intervals; wall time and timers are the base clock's.
import type { Clock, Timer } from '../../shared/clock.ts';

export class ProcessingClock implements Clock {
  private pausedAt: number | null = null;
  private offset = 0;
  /** Base monotonic time of the last resume(). */
  private resumedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly base: Clock) {}

  now(): number {
    return this.base.now();
  }
  monotonic(): number {
    return (this.pausedAt ?? this.base.monotonic()) - this.offset;
  }
  /**
   * Processing time of a base monotonic instant read earlier (a frame's arrival, RawFrame.receivedMono):
   * never before the last pause or resume, so time handed to the engines never runs backwards.
   */
  monotonicAt(baseMono: number): number {
    return (this.pausedAt ?? Math.max(baseMono, this.resumedAt)) - this.offset;
  }
  /** Stops processing time (idempotent). */
  pause(): void {
    if (this.pausedAt === null) this.pausedAt = this.base.monotonic();
  }
  /** Lets processing time run again, without the paused interval (idempotent). */
  resume(): void {
    if (this.pausedAt === null) return;
    this.resumedAt = this.base.monotonic();
    this.offset += this.resumedAt - this.pausedAt;
    this.pausedAt = null;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    return this.base.setTimeout(fn, ms);
  }
  setInterval(fn: () => void, ms: number): Timer {
    return this.base.setInterval(fn, ms);
  }
  clearTimeout(t: Timer): void {
    this.base.clearTimeout(t);
  }
  clearInterval(t: Timer): void {
    this.base.clearInterval(t);
  }
}
