// Shared pieces of the statistical kinds (issue 11): spans given as a sample count or a duration, a
// sliding window over (ts, value) that evicts by either, O(1) rolling mean/variance, the series'
// quantum (smallest step seen, the variance floor of quantised series) and the two-sided score.
import { z } from 'zod';
import { parseDuration } from '../../shared/units.ts';
import { withRoom } from '../arrays.ts';
import { normalTail } from './anomaly-model.ts';

/**
 * Default `cooldown` of the statistical kinds (zscore, spike, changepoint, anomaly): at most four
 * alerts per key per day from a detector that judges "unusual" rather than a stated limit (issue 11:
 * without one, spike fired 7,066 times on the NAB corpus, 11 a day per series). A stated condition
 * (threshold, rate, flatline, missing, pattern) keeps 0: its operator asked for every episode.
 */
export const COOLDOWN_MS = 6 * 3_600_000;

/** A span: `60` (readings) or `1h` (event time; at most `maxCount` readings are kept either way). */
export type Span = { count: number } | { ms: number };

export function spanSchema(minCount: number, maxCount: number) {
  return z
    .union(
      [
        z.number(),
        z.string(),
        // the parsed form again: the engine re-parses validated specs (parsing is idempotent)
        z.strictObject({ count: z.number().int().min(minCount).max(maxCount) }),
        z.strictObject({ ms: z.number().positive() }),
      ],
      {
        error: `expected a count of readings (${minCount}-${maxCount}) or a duration such as 30m, 1h, 1d`,
      },
    )
    .transform((v, ctx): Span => {
      if (typeof v === 'object') return v;
      if (typeof v === 'number') {
        if (Number.isInteger(v) && v >= minCount && v <= maxCount) return { count: v };
        ctx.addIssue({
          code: 'custom',
          message: `expected a whole number of readings from ${minCount} to ${maxCount}, or a duration`,
        });
        return z.NEVER;
      }
      try {
        const ms = parseDuration(v);
        if (ms > 0) return { ms };
        ctx.addIssue({ code: 'custom', message: 'expected a duration above 0' });
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
      return z.NEVER;
    });
}

/**
 * A sliding window of (ts, value), plain JSON; `head` is the index of the oldest value kept. `ts` is
 * kept only for a span given as a duration (empty for a count span, which never reads it: issue 14,
 * half the memory of the zscore and spike windows at 10,000 keys).
 */
export interface SlidingWindow {
  ts: number[];
  vs: number[];
  head: number;
}

export const windowInit = (): SlidingWindow => ({ ts: [], vs: [], head: 0 });
export const windowSize = (w: SlidingWindow): number => w.vs.length - w.head;

/**
 * Appends (ts, x); calls `evict(arg, v)` for every value v that leaves (oldest first). `arg` lets callers
 * pass a module-level function (`momentsRemove`, `sortedRemove`) instead of a closure made per reading
 * (issue 14).
 */
export function windowPush<A>(
  w: SlidingWindow,
  span: Span,
  maxCount: number,
  ts: number,
  x: number,
  evict: (arg: A, v: number) => void,
  arg: A,
): void {
  const byCount = 'count' in span;
  if (!byCount) w.ts.push(ts);
  else if (w.ts.length > 0) w.ts = []; // a checkpoint written before issue 14's cut carries them
  w.vs.push(x);
  const cap = byCount ? span.count : maxCount;
  while (windowSize(w) > cap || (!byCount && w.ts[w.head]! <= ts - span.ms)) {
    evict(arg, w.vs[w.head]!);
    w.head++;
  }
  // Compact once the dead prefix is half as long as the live part, into arrays with room for the values
  // until the next compaction: amortised O(1) per value (three copies per value at most). Issue 14: at
  // a prefix as long as the live part, compacted by slice and refilled by push, a 60-value window's
  // array grew to 175 slots (V8 adds half and 16 when full); now it stays at 91. No floor of 64 dead
  // values either: with it a 30-value window's arrays took ~107 slots.
  const live = w.vs.length - w.head;
  if (w.head * 2 > live) {
    if (byCount && roomy.has(w.vs)) {
      // A count window's array made here last time holds exactly the values until this compaction
      // (`live` stays the span's count): shifted down in place and cut back, it keeps that room (V8
      // trims a cut array only when under half is used) and nothing is allocated. Issue 14, branch
      // `rules`: the copy into a new array per compaction was 4.6 % of the rules' CPU alone. A duration
      // window's `live` varies, so it is still copied into an array sized for it (its memory as before).
      shiftDown(w.vs, w.head);
    } else {
      const room = live + (live >> 1) + 1;
      if (!byCount) w.ts = withRoom(w.ts, room, w.head);
      w.vs = withRoom(w.vs, room, w.head);
      if (byCount) roomy.add(w.vs);
    }
    w.head = 0;
  }
}

/**
 * The count windows' arrays made by withRoom in windowPush (sized for the values until the next
 * compaction), told apart from arrays grown by push or read from a checkpoint, whose room may be far larger: those are
 * copied once into sized ones. Not in the state itself, so the checkpoint JSON is unchanged.
 */
const roomy = new WeakSet<number[]>();

/** Moves a[from..] to a[0..] and cuts the length to match. */
function shiftDown(a: number[], from: number): void {
  const n = a.length - from;
  for (let i = 0; i < n; i++) a[i] = a[i + from]!;
  a.length = n;
}

/** Whether the window has warmed up: `warmup` readings, or `warmup` ms since the first value kept. */
export function spanReached(span: Span, seen: number, firstTs: number | null, ts: number): boolean {
  if ('count' in span) return seen >= span.count;
  return firstTs !== null && ts - firstTs >= span.ms;
}

/**
 * Running mean and M2 over the values in a window, with add and remove (Welford both ways). Removal
 * loses precision slowly, so the owner recomputes from the window every `window length` removals, and
 * at once after a removal that cancelled almost all of M2 (`removed` is then set past any length):
 * O(1) amortised per value instead of the O(window) recompute per reading (69k readings/s at 1,000).
 */
export interface Moments {
  n: number;
  mean: number;
  m2: number;
  removed: number;
}

export const momentsInit = (): Moments => ({ n: 0, mean: 0, m2: 0, removed: 0 });

export function momentsAdd(m: Moments, x: number): void {
  m.n++;
  const d = x - m.mean;
  m.mean += d / m.n;
  m.m2 += d * (x - m.mean);
}

export function momentsRemove(m: Moments, x: number): void {
  if (m.n <= 1) {
    m.n = 0;
    m.mean = 0;
    m.m2 = 0;
    return;
  }
  const d = x - m.mean;
  const before = m.m2;
  m.mean -= d / (m.n - 1);
  m.m2 -= d * (x - m.mean);
  m.n--;
  if (m.m2 < 0) m.m2 = 0;
  m.removed++;
  // Removing the value that made most of M2 (a spike leaving the window) cancels it down to rounding
  // error of the old M2: [355, 0, 0, 0, 0] left a std of 3e-6 instead of 0. When fewer than a millionth
  // of M2 is left, the digits that remain are noise: ask the owner for a rebuild now (its usual check).
  if (m.m2 < 1e-6 * before) m.removed = Number.MAX_SAFE_INTEGER;
}

export function momentsRebuild(m: Moments, w: SlidingWindow): void {
  m.n = 0;
  m.mean = 0;
  m.m2 = 0;
  m.removed = 0;
  for (let i = w.head; i < w.vs.length; i++) momentsAdd(m, w.vs[i]!);
}

/** Sample standard deviation (n − 1). */
export const momentsStd = (m: Moments): number => (m.n > 1 ? Math.sqrt(m.m2 / (m.n - 1)) : 0);

/** Smallest non-zero step between consecutive values; updates `q` with the step prev → x. */
export function quantumAfter(q: number, prev: number | null, x: number): number {
  if (prev === null) return q;
  const step = Math.abs(x - prev);
  return step > 0 && (q === 0 || step < q) ? step : q;
}

/**
 * The spread below which a spread estimate is not believed (issue 11: spike's MAD is 0 when most
 * values are equal, a constant baseline has std 0, and then every other value scored infinity):
 * the configured minimum, half the series' quantum (a value read in steps of q is uncertain by ±q/2,
 * so no spread below that is real), and a millionth of the level (a constant 1e6 is not exact to
 * better than that).
 */
export function spreadFloor(minStd: number, quantum: number, level: number): number {
  return Math.max(minStd, quantum / 2, 1e-6 * Math.abs(level), Number.MIN_VALUE);
}

/** A |z|-style deviation as a score in [0, 1]: P(|Z| < |z|) for a standard normal Z. */
export function twoSidedScore(z: number): number {
  return Number.isFinite(z) ? 1 - 2 * normalTail(Math.abs(z)) : 1;
}
