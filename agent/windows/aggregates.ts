// The per-window accumulator: pure arithmetic, mergeable (session windows merge), JSON-serialisable
// (checkpoints). Conventions (README.md, the oracle test uses the same):
//   sum     Neumaier-compensated, so it does not depend on magnitude cancellation in arrival order
//   mean    Welford running mean
//   stddev  POPULATION standard deviation sqrt(M2/n) by Welford / Chan et al. merge: a window holds all
//           readings of its interval, not a sample of them; defined (0) for a single reading
//   first   value with the smallest event ts, ties broken by arrival order (earliest arrival wins)
//   last    value with the largest event ts, ties broken by arrival order (latest arrival wins)
//   anomaly_max  the highest rule score among the window's readings (issue 11); absent when none had one
//   p50/p95 the lower nearest-rank quantile sorted[floor(q * (n - 1))] (0-based): exact while the window
//           holds at most EXACT_MAX values, then DDSketch (relative accuracy 1%), clamped into [min, max]
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js';
import type { AggregateName, Summary } from '../../shared/model.ts';
import { withRoom } from '../arrays.ts';

export const SKETCH_RELATIVE_ACCURACY = 0.01;
// Caps one sketch store at 2048 bins (~16 KB): at 1% accuracy that spans ~18 decades of magnitude before
// the smallest magnitudes collapse into one bin. Without a cap a window holding both 1e-300 and 1e300
// would allocate ~70k bins: bounded state matters more than exotic dynamic range.
const SKETCH_BIN_LIMIT = 2048;
// Issue 14: a DDSketch per window cost more than the rest of the accumulator (a dense store allocated and
// grown per window, a log per value), while most windows hold a few dozen readings (10 s of 1 Hz data).
// Up to this many values a window keeps them and answers exactly (inside the 1% guarantee by definition);
// the 65th value moves them into a sketch. Same multiset, same bins: merge and checkpoints stay exact.
export const EXACT_MAX = 64;

// Room for held values, grown 1.5x from 8 up to EXACT_MAX + 1 (the value that moves them into a sketch)
// by the accumulator itself. Issue 14: grown by push, an array takes room for 17, then 41, then 77
// values (V8 adds half and 16), 6.7 MiB for the ~33,000 windows of 10,000 keys holding ~20 values each.
const HELD_ROOM = [8, 12, 18, 27, 40, 60, EXACT_MAX + 1];
/** By a count of held values: the room to grow to when that count fills the room (0: room is left). */
const GROW_AT = new Uint8Array(EXACT_MAX + 2);
for (let i = 0; i + 1 < HELD_ROOM.length; i++) GROW_AT[HELD_ROOM[i]!] = HELD_ROOM[i + 1]!;

/** The smallest room of HELD_ROOM for `n` values (n itself beyond them). */
function roomFor(n: number): number {
  for (const r of HELD_ROOM) if (r >= n) return r;
  return n;
}

type Sketch = LogCollapsingLowestDenseDDSketch;
type Store = Sketch['store'];

export type SummaryFields = Pick<Summary, 'count'> &
  Partial<
    Pick<
      Summary,
      'min' | 'max' | 'mean' | 'sum' | 'stddev' | 'first' | 'last' | 'p50' | 'p95' | 'anomaly_max'
    >
  >;

/** Serialised accumulator (checkpoints). Infinite bounds never occur: an accumulator is created non-empty. */
export interface AccumulatorJSON {
  n: number;
  sum: number;
  comp: number;
  mean: number;
  m2: number;
  min: number;
  max: number;
  first: [ts: number, seq: number, value: number];
  last: [ts: number, seq: number, value: number];
  /** sketch bins as flat [key, count, key, count, ...] lists, positive and negative stores, and zeros */
  sk: { p: number[]; n: number[]; z: number } | null;
  /** the values themselves while at most EXACT_MAX (then `sk` is null); absent before issue 14 */
  v?: number[];
  /** highest reading score, null when no reading had one (absent in checkpoints before issue 11) */
  am?: number | null;
}

function newSketch(): Sketch {
  return new LogCollapsingLowestDenseDDSketch({
    relativeAccuracy: SKETCH_RELATIVE_ACCURACY,
    binLimit: SKETCH_BIN_LIMIT,
  });
}

function storeBins(store: Store): number[] {
  const out: number[] = [];
  if (store.count === 0) return out;
  for (let i = 0; i < store.bins.length; i++) {
    const c = store.bins[i]!;
    if (c > 0) out.push(i + store.offset, c);
  }
  return out;
}

function addBins(sketch: Sketch, store: Store, bins: readonly number[]): void {
  for (let i = 0; i + 1 < bins.length; i += 2) {
    store.add(bins[i]!, bins[i + 1]!);
    sketch.count += bins[i + 1]!;
  }
}

/**
 * Merges `src` into `dst` bin by bin. Not `DDSketch.merge`: in @datadog/sketches-js 2.1.1 it merges only
 * the positive store and silently loses every negative value of `src` (checked: merging {-5,-6} into {1}
 * gives count 3 but p0 = 0.99). Only bins and counts matter here; min/max/sum live in the Accumulator.
 */
function mergeSketch(dst: Sketch, src: Sketch): void {
  addBins(dst, dst.store, storeBins(src.store));
  addBins(dst, dst.negativeStore, storeBins(src.negativeStore));
  dst.zeroCount += src.zeroCount;
  dst.count += src.zeroCount;
}

export function needsSketch(aggregates: Iterable<AggregateName>): boolean {
  for (const a of aggregates) if (a === 'p50' || a === 'p95') return true;
  return false;
}

// Slots of Accumulator.f. Issue 14: as object fields these were one heap-allocated number each (V8
// boxes a double field), ~176 B per window beside the 150 B object; in one double array they take 8 B
// each plus the array's 48 B. 30,000+ accumulators at 10,000 keys.
const SUM = 0;
const COMP = 1;
const MEAN = 2;
const M2 = 3;
const MIN = 4;
const MAX = 5;
const FIRST_TS = 6;
const FIRST_V = 7;
const LAST_TS = 8;
const LAST_V = 9;
const SCORE_MAX = 10;

export class Accumulator {
  n = 0;
  // Arrival seq of the first (smallest ts) and last (largest ts) reading: small integers, kept unboxed.
  private firstSeq = 0;
  private lastSeq = 0;
  /**
   * sum, Neumaier compensation, mean, M2, min, max, and ts and value of the first and last readings,
   * highest score (slots above). One literal with non-integers: a packed double array from the start.
   */
  private readonly f: number[] = [
    0,
    0,
    0,
    0,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.POSITIVE_INFINITY,
    Number.NaN,
    Number.NEGATIVE_INFINITY,
    Number.NaN,
    Number.NEGATIVE_INFINITY,
  ];
  /** p50/p95 asked for: `vals` until EXACT_MAX values, `sketch` after; both null when not asked for */
  private vals: number[] | null;
  private sketch: Sketch | null = null;

  constructor(withSketch: boolean) {
    this.vals = withSketch ? withRoom([], HELD_ROOM[0]!) : null;
  }

  get min(): number {
    return this.f[MIN]!;
  }
  get max(): number {
    return this.f[MAX]!;
  }

  private toSketch(): Sketch {
    const sk = newSketch();
    for (const v of this.vals!) sk.accept(v);
    this.vals = null;
    this.sketch = sk;
    return sk;
  }

  /** Event-time bounds of the readings held (count windows report them as window start/end). */
  get minTs(): number {
    return this.f[FIRST_TS]!;
  }
  get maxTs(): number {
    return this.f[LAST_TS]!;
  }

  /** `seq` is the engine's arrival counter: it orders ties of `first`/`last` deterministically. */
  add(value: number, ts: number, seq: number, score?: number): void {
    const f = this.f;
    this.n++;
    if (score !== undefined && score > f[SCORE_MAX]!) f[SCORE_MAX] = score;
    this.addSum(value, 0);
    const d = value - f[MEAN]!;
    const mean = f[MEAN]! + d / this.n;
    f[MEAN] = mean;
    f[M2] = f[M2]! + d * (value - mean);
    if (value < f[MIN]!) f[MIN] = value;
    if (value > f[MAX]!) f[MAX] = value;
    this.takeFirst(ts, seq, value);
    this.takeLast(ts, seq, value);
    if (this.vals !== null) this.hold(value);
    else this.sketch?.accept(value);
  }

  /** Keeps `value` with the held ones (vals not null); past EXACT_MAX they move into a sketch. */
  private hold(value: number): void {
    let vals = this.vals!;
    const grow = GROW_AT[vals.length]!;
    if (grow !== 0) {
      vals = withRoom(vals, grow);
      this.vals = vals;
    }
    vals.push(value);
    if (vals.length > EXACT_MAX) this.toSketch();
  }

  /** Merges `o` into this (Chan, Golub & LeVeque pairwise update for mean and M2). */
  merge(o: Accumulator): void {
    if (o.n === 0) return;
    const f = this.f;
    const g = o.f;
    const n = this.n + o.n;
    const d = g[MEAN]! - f[MEAN]!;
    f[MEAN] = f[MEAN]! + (d * o.n) / n;
    f[M2] = f[M2]! + g[M2]! + (d * d * this.n * o.n) / n;
    this.n = n;
    this.addSum(g[SUM]!, g[COMP]!);
    if (g[MIN]! < f[MIN]!) f[MIN] = g[MIN]!;
    if (g[MAX]! > f[MAX]!) f[MAX] = g[MAX]!;
    if (g[SCORE_MAX]! > f[SCORE_MAX]!) f[SCORE_MAX] = g[SCORE_MAX]!;
    this.takeFirst(g[FIRST_TS]!, o.firstSeq, g[FIRST_V]!);
    this.takeLast(g[LAST_TS]!, o.lastSeq, g[LAST_V]!);
    if (this.vals !== null && o.vals !== null) {
      for (const v of o.vals) {
        if (this.vals === null) this.sketch!.accept(v);
        else this.hold(v);
      }
    } else if ((this.vals !== null || this.sketch !== null) && (o.vals !== null || o.sketch !== null)) {
      const dst = this.sketch ?? this.toSketch();
      if (o.sketch !== null) mergeSketch(dst, o.sketch);
      else for (const v of o.vals!) dst.accept(v);
    }
  }

  private takeFirst(ts: number, seq: number, v: number): void {
    const f = this.f;
    if (ts < f[FIRST_TS]! || (ts === f[FIRST_TS]! && seq < this.firstSeq)) {
      f[FIRST_TS] = ts;
      this.firstSeq = seq;
      f[FIRST_V] = v;
    }
  }

  private takeLast(ts: number, seq: number, v: number): void {
    const f = this.f;
    if (ts > f[LAST_TS]! || (ts === f[LAST_TS]! && seq > this.lastSeq)) {
      f[LAST_TS] = ts;
      this.lastSeq = seq;
      f[LAST_V] = v;
    }
  }

  // Neumaier's improved Kahan summation; `extra` carries another accumulator's compensation on merge.
  private addSum(v: number, extra: number): void {
    const f = this.f;
    const sum = f[SUM]!;
    const t = sum + v;
    let comp = f[COMP]!;
    if (Math.abs(sum) >= Math.abs(v)) comp += sum - t + v;
    else comp += v - t + sum;
    f[SUM] = t;
    f[COMP] = comp + extra;
  }

  quantile(q: number): number | null {
    if (this.n === 0) return null;
    if (this.vals !== null) {
      // Sorted in place: the order of the held values means nothing else. Insertion sort: at most
      // EXACT_MAX values, often nearly in order, already sorted for the second quantile of an emission;
      // no comparator call per comparison as in Array#sort (issue 14: the sort was 4 % of the pipeline).
      const xs = this.vals;
      for (let i = 1; i < xs.length; i++) {
        const x = xs[i]!;
        let j = i - 1;
        while (j >= 0 && xs[j]! > x) {
          xs[j + 1] = xs[j]!;
          j--;
        }
        xs[j + 1] = x;
      }
      return xs[Math.floor(q * (xs.length - 1))]!;
    }
    if (!this.sketch) return null;
    const v = this.sketch.getValueAtQuantile(q);
    // The sketch returns a bin's representative value; clamping keeps p50/p95 inside [min, max] (exact
    // for windows whose values are all equal, and never worse than the 1% guarantee).
    return Math.min(this.f[MAX]!, Math.max(this.f[MIN]!, v));
  }

  /** The summary fields asked for; `count` always. */
  result(aggregates: ReadonlySet<AggregateName>): SummaryFields {
    const out: SummaryFields = { count: this.n };
    this.putResult(out, aggregates);
    return out;
  }

  /**
   * The fields asked for (not `count`), written into `out` in the order of `aggregates`: the engine writes
   * them straight into the summary it emits (issue 14: a result object spread into the summary per window
   * emission cost a second object and a generic copy of its fields).
   */
  putResult(out: SummaryFields, aggregates: ReadonlySet<AggregateName>): void {
    if (this.n === 0) return;
    const f = this.f;
    for (const a of aggregates) {
      switch (a) {
        case 'count':
          break;
        case 'min':
          out.min = f[MIN]!;
          break;
        case 'max':
          out.max = f[MAX]!;
          break;
        case 'sum':
          out.sum = f[SUM]! + f[COMP]!;
          break;
        case 'mean':
          out.mean = f[MEAN]!;
          break;
        case 'stddev':
          out.stddev = Math.sqrt(Math.max(0, f[M2]! / this.n));
          break;
        case 'first':
          out.first = f[FIRST_V]!;
          break;
        case 'last':
          out.last = f[LAST_V]!;
          break;
        case 'p50':
          out.p50 = this.quantile(0.5);
          break;
        case 'p95':
          out.p95 = this.quantile(0.95);
          break;
        case 'anomaly_max':
          if (f[SCORE_MAX]! >= 0) out.anomaly_max = f[SCORE_MAX]!;
          break;
      }
    }
  }

  /**
   * `serialise`: the caller stringifies the result before this accumulator changes again (the
   * incremental checkpoint), so the held values are handed out, not copied (issue 14).
   */
  toJSON(serialise = false): AccumulatorJSON {
    const sk = this.sketch;
    const f = this.f;
    return {
      n: this.n,
      sum: f[SUM]!,
      comp: f[COMP]!,
      mean: f[MEAN]!,
      m2: f[M2]!,
      min: f[MIN]!,
      max: f[MAX]!,
      first: [f[FIRST_TS]!, this.firstSeq, f[FIRST_V]!],
      last: [f[LAST_TS]!, this.lastSeq, f[LAST_V]!],
      sk: sk ? { p: storeBins(sk.store), n: storeBins(sk.negativeStore), z: sk.zeroCount } : null,
      ...(this.vals !== null ? { v: serialise ? this.vals : [...this.vals] } : {}),
      am: f[SCORE_MAX]! >= 0 ? f[SCORE_MAX]! : null,
    };
  }

  static fromJSON(j: AccumulatorJSON): Accumulator {
    const a = new Accumulator(Accumulator.sketchedIn(j));
    a.load(j);
    return a;
  }

  /** Whether `j` comes from an accumulator made with a sketch (held values or bins): the constructor's argument. */
  static sketchedIn(j: AccumulatorJSON): boolean {
    return j.sk !== null || Array.isArray(j.v);
  }

  /** Takes the state serialised in `j` (fromJSON; a subclass restoring itself, agent/windows/engine.ts). */
  protected load(j: AccumulatorJSON): void {
    const f = this.f;
    this.n = j.n;
    f[SUM] = j.sum;
    f[COMP] = j.comp;
    f[MEAN] = j.mean;
    f[M2] = j.m2;
    f[MIN] = j.min;
    f[MAX] = j.max;
    f[FIRST_TS] = j.first[0];
    this.firstSeq = j.first[1];
    f[FIRST_V] = j.first[2];
    f[LAST_TS] = j.last[0];
    this.lastSeq = j.last[1];
    f[LAST_V] = j.last[2];
    if (typeof j.am === 'number' && j.am >= 0) f[SCORE_MAX] = j.am;
    if (Array.isArray(j.v) && j.sk === null) this.vals = withRoom(j.v, roomFor(j.v.length));
    else if (j.sk) {
      const sk = newSketch();
      this.vals = null;
      this.sketch = sk;
      addBins(sk, sk.store, j.sk.p);
      addBins(sk, sk.negativeStore, j.sk.n);
      sk.zeroCount = j.sk.z;
      sk.count += j.sk.z;
    }
  }
}
