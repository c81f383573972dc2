// Awaiting conditions in tests without fixed sleeps: poll a predicate until it holds or a deadline passes.
// With `progress`, the deadline is one of no progress (issue 12): on a loaded machine a slow but moving
// pipeline keeps the wait alive, a stalled one fails after `timeoutMs` without change, whatever the load.
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Without `progress`: the whole wait. With it: the longest time the progress value may stand still. */
  timeoutMs?: number;
  intervalMs?: number;
  /** A value that moves while the awaited condition is getting closer (a count received, a sum sent). */
  progress?: () => number | Promise<number>;
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  { timeoutMs = 15_000, intervalMs = 25, progress }: WaitOptions = {},
): Promise<T> {
  let deadline = performance.now() + timeoutMs;
  let last: unknown;
  let seen: number | undefined;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false && v !== null) return v as T;
    } catch (e) {
      last = e;
    }
    if (progress) {
      // A progress probe that fails (a process restarting) counts as no progress.
      const p = await Promise.resolve()
        .then(progress)
        .catch(() => seen);
      if (p !== seen) {
        seen = p;
        deadline = performance.now() + timeoutMs;
      }
    }
    if (performance.now() > deadline) {
      const how = progress
        ? `no progress for ${timeoutMs} ms (at ${seen})`
        : `timed out after ${timeoutMs} ms`;
      throw new Error(`${how} waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    }
    await delay(intervalMs);
  }
}
