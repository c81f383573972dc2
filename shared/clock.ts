// Time is a dependency (STYLE.md). `now()` is the wall clock (event time, stamps); `monotonic()` never
// jumps and is used for every timeout, retry and TTL so wall-clock steps cannot stall or expire data.

export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds (arbitrary origin). */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  setInterval(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer): void;
  clearInterval(t: Timer): void;
}

// Opaque handle: the system clock returns Node's Timeout, the fake clock its own record.
export type Timer = object;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
  every: number | null;
}

/** A manual clock for tests: time moves only through `advance()`/`setWall()`. */
export class FakeClock implements Clock {
  private mono = 0;
  private wall: number;
  private timers: FakeTimer[] = [];
  private nextId = 1;
  constructor(wallStart = Date.UTC(2024, 0, 1)) {
    this.wall = wallStart;
  }
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  /** Steps the wall clock only (an NTP jump); monotonic time and timers are unaffected. */
  setWall(ms: number): void {
    this.wall = ms;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const t: FakeTimer = { id: this.nextId++, at: this.mono + Math.max(0, ms), fn, every: null };
    this.timers.push(t);
    return t;
  }
  setInterval(fn: () => void, ms: number): Timer {
    const t: FakeTimer = { id: this.nextId++, at: this.mono + ms, fn, every: Math.max(1, ms) };
    this.timers.push(t);
    return t;
  }
  clearTimeout(t: Timer): void {
    this.timers = this.timers.filter((x) => x !== t);
  }
  clearInterval(t: Timer): void {
    this.clearTimeout(t);
  }
  /** Moves both clocks forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.mono + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.wall += due.at - this.mono;
      this.mono = due.at;
      if (due.every !== null) due.at += due.every;
      else this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
    this.wall += target - this.mono;
    this.mono = target;
  }
}
