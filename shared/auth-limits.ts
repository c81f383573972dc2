// Limits on password checks. A wrong password costs one scrypt (N=2^15: ~100 ms of CPU and 32 MiB on
// libuv's thread pool, which Kafka's DNS lookups and every async fs call share), so without limits a
// client looping over CONNECTs with wrong passwords keeps the collector's cores and thread pool busy.
//
//  - failures per agent and per remote address in a sliding window: at the limit, a CONNECT is refused
//    (CONNACK 5) without running scrypt until the oldest counted failure is older than the window (refused
//    attempts are not counted, so a lock lasts at most one window);
//  - at most `concurrentChecks` scrypt runs at once, at most `queuedChecks` waiting (then CONNACK 3,
//    server unavailable; agents retry with backoff).
// A secret that was already verified is checked against its cached digest first (credentials.ts), so an
// attacker who locks an agent id out does not lock out the agent itself, once it has connected before.
// Like fail2ban's maxretry/findtime/bantime, with the ban lasting one window.
//
// Checks in flight count against the limits too (issue 12, item 8): counting only finished failures let
// 200 wrong CONNECTs sent at once all reach scrypt (38 CPU-s, the pool saturated 78 s), because none had
// failed yet when the next arrived. `reserve()` takes a place under both limits before the check and
// `settle()` gives it back with the outcome, so at most `failuresPerAgent` checks of one id (and
// `failuresPerAddress` from one address) are ever pending or failed inside a window.

export interface AuthLimitsOptions {
  failuresPerAgent: number;
  failuresPerAddress: number;
  windowMs: number;
  concurrentChecks: number;
  queuedChecks: number;
  now?: () => number;
}

interface Failures {
  /** Failure times inside the window, oldest first (at most the limit + 1 are kept). */
  times: number[];
}

export type AuthVerdict = 'ok' | 'agent_locked' | 'address_locked';

/** Bounded memory: tables are swept of expired entries when they pass SWEEP_AT, and never exceed MAX. */
const SWEEP_AT = 10_000;
const MAX_ENTRIES = 100_000;

export class AuthLimits {
  private readonly byAgent = new Map<string, Failures>();
  private readonly byAddress = new Map<string, Failures>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: AuthLimitsOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** Checks in flight per agent id and per address (entries removed at zero: bounded by the queue). */
  private readonly pendingByAgent = new Map<string, number>();
  private readonly pendingByAddress = new Map<string, number>();

  /** May this agent, from this address, have its password checked now? (Failures and checks in flight.) */
  check(agent: string, address: string): AuthVerdict {
    const pa = this.pendingByAgent.get(agent) ?? 0;
    const pd = this.pendingByAddress.get(address) ?? 0;
    if (this.over(this.byAgent, agent, this.opts.failuresPerAgent - pa)) return 'agent_locked';
    if (this.over(this.byAddress, address, this.opts.failuresPerAddress - pd)) return 'address_locked';
    return 'ok';
  }

  /**
   * `check()`, and when it is 'ok', a place under both limits until `settle()`: a check in flight
   * counts as a failure until it is known not to be one.
   */
  reserve(agent: string, address: string): AuthVerdict {
    const v = this.check(agent, address);
    if (v !== 'ok') return v;
    this.pendingByAgent.set(agent, (this.pendingByAgent.get(agent) ?? 0) + 1);
    this.pendingByAddress.set(address, (this.pendingByAddress.get(address) ?? 0) + 1);
    return v;
  }

  /** Ends a reserved check: true = right secret, false = a failure, null = not checked (queue full). */
  settle(agent: string, address: string, ok: boolean | null): void {
    release(this.pendingByAgent, agent);
    release(this.pendingByAddress, address);
    if (ok === true) this.succeeded(agent);
    else if (ok === false) this.failed(agent, address);
  }

  failed(agent: string, address: string): void {
    this.add(this.byAgent, agent, this.opts.failuresPerAgent);
    this.add(this.byAddress, address, this.opts.failuresPerAddress);
  }

  /** A correct password clears the agent's failures (not the address's: many agents may share it). */
  succeeded(agent: string): void {
    this.byAgent.delete(agent);
  }

  /** Password checks running and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /**
   * Runs a password check when a slot is free. Resolves to null without running it when the queue is
   * full (the caller refuses the CONNECT as server unavailable).
   */
  async run<T>(check: () => Promise<T>): Promise<T | null> {
    if (this.running >= this.opts.concurrentChecks) {
      if (this.waiting.length >= this.opts.queuedChecks) return null;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await check();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes to the next waiter
      else this.running--;
    }
  }

  private over(table: Map<string, Failures>, key: string, limit: number): boolean {
    if (limit <= 0) return true;
    const f = table.get(key);
    if (!f) return false;
    this.expire(f);
    if (f.times.length === 0) {
      table.delete(key);
      return false;
    }
    return f.times.length >= limit;
  }

  private add(table: Map<string, Failures>, key: string, limit: number): void {
    let f = table.get(key);
    if (!f) {
      if (table.size >= SWEEP_AT) this.sweep(table);
      f = { times: [] };
      table.set(key, f);
    }
    this.expire(f);
    f.times.push(this.now());
    if (f.times.length > limit) f.times.splice(0, f.times.length - limit);
  }

  private expire(f: Failures): void {
    const cutoff = this.now() - this.opts.windowMs;
    let i = 0;
    while (i < f.times.length && f.times[i]! <= cutoff) i++;
    if (i > 0) f.times.splice(0, i);
  }

  private sweep(table: Map<string, Failures>): void {
    for (const [k, f] of table) {
      this.expire(f);
      if (f.times.length === 0) table.delete(k);
    }
    // Still full (failures from more addresses than this in one window): forget the oldest-created.
    for (const k of table.keys()) {
      if (table.size < MAX_ENTRIES) break;
      table.delete(k);
    }
  }
}

function release(table: Map<string, number>, key: string): void {
  const n = (table.get(key) ?? 0) - 1;
  if (n > 0) table.set(key, n);
  else table.delete(key);
}
