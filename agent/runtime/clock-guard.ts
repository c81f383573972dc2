// Gateways often have no real-time clock: until NTP syncs, the wall clock may say 1970 or the last
// shutdown time (issue 4, "Clocks"). ClockGuard decides whether the wall clock can be trusted and
// detects steps by comparing wall-clock progress with the monotonic clock.
import type { Clock } from '../../shared/clock.ts';

/** Build date of this release: a wall clock more than a day before it is certainly unsynchronised. */
export const BUILD_DATE_MS = Date.UTC(2026, 10, 1);
const JUMP_TOLERANCE_MS = 2000;
/**
 * limits.minEventTime's default, 2000-01-01: far above what a sensor without a clock sends when it
 * reports uptime as epoch time (1970 + days), below any real measurement, and it accepts RFC 8428's
 * 2010 examples. A deployment whose RTCs reset to 2000-01-01 sets it to its installation date.
 */
export const DEFAULT_MIN_EVENT_TIME_MS = Date.UTC(2000, 0, 1);

export class ClockGuard {
  private lastWall: number;
  private lastMono: number;
  private syncedState: boolean;
  jumps = 0;

  constructor(
    private readonly clock: Clock,
    private readonly buildDate = BUILD_DATE_MS,
    /** limits.minEventTime: readings stamped earlier are refused (`timestamp_too_old`). */
    private readonly minEventTimeMs = DEFAULT_MIN_EVENT_TIME_MS,
  ) {
    this.lastWall = clock.now();
    this.lastMono = clock.monotonic();
    this.syncedState = this.plausible(this.lastWall);
  }

  private plausible(wall: number): boolean {
    return wall >= this.buildDate - 86_400_000;
  }

  /** Call periodically; returns the size of a detected step in ms (0 if none). */
  check(): number {
    const wall = this.clock.now();
    const mono = this.clock.monotonic();
    const step = wall - this.lastWall - (mono - this.lastMono);
    this.lastWall = wall;
    this.lastMono = mono;
    this.syncedState = this.plausible(wall);
    if (Math.abs(step) > JUMP_TOLERANCE_MS) {
      this.jumps++;
      return step;
    }
    return 0;
  }

  synced(): boolean {
    return this.syncedState;
  }

  /**
   * The one floor for event times, every format (issue 12 item 5). It was build date - 10 years, which
   * refused RFC 8428's own examples (2010) and any backfill of older data.
   */
  minEventTime(): number {
    return this.minEventTimeMs;
  }
}
