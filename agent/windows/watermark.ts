// Per-device event-time watermark (README.md "Watermarks"). Pure: the caller passes monotonic time.
//
//   watermark = max event ts seen from the device - maxOutOfOrder           (never decreases)
//   idle:       once the device has sent nothing for idleTimeout of *monotonic* processing time, its
//               event clock is assumed to keep running at processing-time speed from its last reading:
//               watermark = max(watermark, maxTs - maxOutOfOrder + silentFor)
// so the device's last windows close even if it never sends again. Wall-clock steps cannot stall or
// rush this, because only monotonic time is used (STYLE.md: time is a dependency).

export interface WatermarkJSON {
  wm: number | null;
  maxTs: number | null;
  /** monotonic ms since the last reading at snapshot time (monotonic origins differ across processes) */
  silent: number;
}

export class DeviceWatermark {
  /** Current watermark; -Infinity until the first reading. */
  wm = Number.NEGATIVE_INFINITY;
  maxTs = Number.NEGATIVE_INFINITY;
  /** Monotonic time of the last reading. */
  lastSeen: number;

  constructor(now: number) {
    this.lastSeen = now;
  }

  /** Records a reading's event time. Returns true when the watermark moved. */
  observe(ts: number, now: number, maxOutOfOrder: number): boolean {
    this.lastSeen = now;
    if (ts > this.maxTs) this.maxTs = ts;
    return this.raise(this.maxTs - maxOutOfOrder);
  }

  silentFor(now: number): number {
    return now - this.lastSeen;
  }

  isIdle(now: number, idleTimeout: number): boolean {
    return this.silentFor(now) >= idleTimeout;
  }

  /** Idle advancement; returns true when the watermark moved. */
  advanceIdle(now: number, idleTimeout: number, maxOutOfOrder: number): boolean {
    if (!this.isIdle(now, idleTimeout) || this.maxTs === Number.NEGATIVE_INFINITY) return false;
    return this.raise(this.maxTs - maxOutOfOrder + this.silentFor(now));
  }

  private raise(candidate: number): boolean {
    if (candidate <= this.wm) return false;
    this.wm = candidate;
    return true;
  }

  toJSON(now: number): WatermarkJSON {
    return {
      wm: finiteOrNull(this.wm),
      maxTs: finiteOrNull(this.maxTs),
      silent: Math.max(0, now - this.lastSeen),
    };
  }

  static fromJSON(j: WatermarkJSON, now: number): DeviceWatermark {
    const w = new DeviceWatermark(now - j.silent);
    w.wm = j.wm ?? Number.NEGATIVE_INFINITY;
    w.maxTs = j.maxTs ?? Number.NEGATIVE_INFINITY;
    return w;
  }
}

function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
