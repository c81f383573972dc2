// The unsynced-clock hold (issue 4, "Clocks"): while the wall clock cannot be trusted, readings stamped
// with their arrival time are kept with their monotonic arrival instead of being windowed in 1970, and
// stamped when the clock syncs (ingress.ts releases them). They are part of the checkpoint ('held').
import type { Clock } from '../../shared/clock.ts';
import type { Reading } from '../../shared/model.ts';

export interface HeldReading {
  reading: Reading;
  /** Monotonic arrival time. */
  mono: number;
  source: string;
}

export class ClockHold {
  private held: HeldReading[] = [];

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.held.length;
  }

  /** Keeps `r`; false when `limit` readings are already held (the caller counts the drop). */
  hold(r: Reading, source: string, limit: number): boolean {
    if (this.held.length >= limit) return false;
    this.held.push({ reading: r, mono: this.clock.monotonic(), source });
    return true;
  }

  /** Empties the hold and returns what it held, in arrival order. */
  take(): HeldReading[] {
    const held = this.held;
    this.held = [];
    return held;
  }

  /** The checkpoint form: each reading with its age, since a monotonic time means nothing in another process. */
  toCheckpoint(): string {
    const mono = this.clock.monotonic();
    return JSON.stringify(this.held.map((h) => ({ r: h.reading, age: mono - h.mono, source: h.source })));
  }

  /**
   * Readings held by the process that wrote the checkpoint: they keep their age at the checkpoint (the
   * downtime itself is not counted).
   */
  restore(stored: unknown): void {
    if (!Array.isArray(stored)) return;
    const mono = this.clock.monotonic();
    for (const h of stored as { r: Reading; age: number; source: string }[]) {
      if (h && typeof h === 'object' && h.r && typeof h.age === 'number')
        this.held.push({ reading: h.r, mono: mono - h.age, source: String(h.source) });
    }
  }
}
