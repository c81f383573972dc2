// Exact accounting of what was written (firmware-sim/README.md, "Accounting"). A frame is counted once
// its output confirmed it: serial/stdout after the write callback, MQTT QoS 1 on PUBACK, QoS 0 once
// handed to the socket. Frames generated but never confirmed are not counted.
import type { Frame } from './fleet.ts';

export interface Report {
  sent: { total: number; byDeviceMetric: Record<string, number> };
  /** Distinct valid readings written (= sent.total). Duplicates and malformed frames add none. */
  readingsSent: number;
  /** Every frame written: valid + duplicates + malformed. */
  framesSent: number;
  malformed: number;
  duplicates: number;
  /** Valid frames written after a newer reading of the same device/metric (held back by --out-of-order). */
  outOfOrder: number;
  /** Held-back frames dropped because the run was interrupted (not written, not counted above). */
  heldBackDiscarded: number;
  /** Frames the output failed to write (errors); not counted above. */
  failed: number;
  durationMs: number;
  /** Nominal readings per second: devices x metrics x rate. */
  targetRateHz: number;
  /** Valid readings per second actually written over the active span of the run. */
  achievedRateHz: number;
  achievedFrameRateHz: number;
  /** Largest delay of a tick behind its schedule (ms): how far the scheduler fell behind. */
  maxLagMs: number;
  ticks: number;
  stoppedBy: 'count' | 'duration' | 'signal';
}

export class Tally {
  framesSent = 0;
  readingsSent = 0;
  malformed = 0;
  duplicates = 0;
  outOfOrder = 0;
  failedFrames = 0;
  private readonly byKey = new Map<string, number>();

  /** Counts one frame its output confirmed. */
  written = (f: Frame): void => {
    this.framesSent++;
    if (f.kind === 'malformed') this.malformed++;
    else if (f.kind === 'duplicate') this.duplicates++;
    else {
      if (f.outOfOrder) this.outOfOrder++;
      for (const m of f.readings) {
        const k = `${f.device}/${m}`;
        this.byKey.set(k, (this.byKey.get(k) ?? 0) + 1);
        this.readingsSent++;
      }
    }
  };

  /** Counts one frame its output gave up on (not written). */
  failed = (_f: Frame): void => {
    this.failedFrames++;
  };

  byDeviceMetric(): Record<string, number> {
    return Object.fromEntries([...this.byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
