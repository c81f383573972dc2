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

export class Accumulator {
  n = 0;
  private sum = 0;
  private comp = 0;
  private mean = 0;
  private m2 = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  // ts, arrival seq and value of the first (smallest ts) and last (largest ts) reading; scalar fields, not
  // tuples: add() is the hot path and runs once per reading per window.
  private firstTs = Number.POSITIVE_INFINITY;
  private firstSeq = 0;
  private firstV = Number.NaN;
  private lastTs = Number.NEGATIVE_INFINITY;
  private lastSeq = 0;
  private lastV = Number.NaN;
  /** p50/p95 asked for: `vals` until EXACT_MAX values, `sketch` after; both null when not asked for */
  private vals: number[] | null;
  private sketch: Sketch | null = null;
  private scoreMax = Number.NEGATIVE_INFINITY;

  constructor(withSketch: boolean) {
    this.vals = withSketch ? [] : null;
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
    return this.firstTs;
  }
  get maxTs(): number {
    return this.lastTs;
  }

  /** `seq` is the engine's arrival counter: it orders ties of `first`/`last` deterministically. */
  add(value: number, ts: number, seq: number, score?: number): void {
    this.n++;
    if (score !== undefined && score > this.scoreMax) this.scoreMax = score;
    this.addSum(value, 0);
    const d = value - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (value - this.mean);
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    this.takeFirst(ts, seq, value);
    this.takeLast(ts, seq, value);
    if (this.vals !== null) {
      this.vals.push(value);
      if (this.vals.length > EXACT_MAX) this.toSketch();
    } else this.sketch?.accept(value);
  }

  /** Merges `o` into this (Chan, Golub & LeVeque pairwise update for mean and M2). */
  merge(o: Accumulator): void {
    if (o.n === 0) return;
    const n = this.n + o.n;
    const d = o.mean - this.mean;
    this.mean += (d * o.n) / n;
    this.m2 += o.m2 + (d * d * this.n * o.n) / n;
    this.n = n;
    this.addSum(o.sum, o.comp);
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
    if (o.scoreMax > this.scoreMax) this.scoreMax = o.scoreMax;
    this.takeFirst(o.firstTs, o.firstSeq, o.firstV);
    this.takeLast(o.lastTs, o.lastSeq, o.lastV);
    if (this.vals !== null && o.vals !== null) {
      for (const v of o.vals) this.vals.push(v);
      if (this.vals.length > EXACT_MAX) this.toSketch();
    } else if ((this.vals !== null || this.sketch !== null) && (o.vals !== null || o.sketch !== null)) {
      const dst = this.sketch ?? this.toSketch();
      if (o.sketch !== null) mergeSketch(dst, o.sketch);
      else for (const v of o.vals!) dst.accept(v);
    }
  }

  private takeFirst(ts: number, seq: number, v: number): void {
    if (ts < this.firstTs || (ts === this.firstTs && seq < this.firstSeq)) {
      this.firstTs = ts;
      this.firstSeq = seq;
      this.firstV = v;
    }
  }

  private takeLast(ts: number, seq: number, v: number): void {
    if (ts > this.lastTs || (ts === this.lastTs && seq > this.lastSeq)) {
      this.lastTs = ts;
      this.lastSeq = seq;
      this.lastV = v;
    }
  }

  // Neumaier's improved Kahan summation; `extra` carries another accumulator's compensation on merge.
  private addSum(v: number, extra: number): void {
    const t = this.sum + v;
    if (Math.abs(this.sum) >= Math.abs(v)) this.comp += this.sum - t + v;
    else this.comp += v - t + this.sum;
    this.sum = t;
    this.comp += extra;
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
    return Math.min(this.max, Math.max(this.min, v));
  }

  /** The summary fields asked for; `count` always. */
  result(aggregates: ReadonlySet<AggregateName>): SummaryFields {
    const out: SummaryFields = { count: this.n };
    if (this.n === 0) return out;
    for (const a of aggregates) {
      switch (a) {
        case 'count':
          break;
        case 'min':
          out.min = this.min;
          break;
        case 'max':
          out.max = this.max;
          break;
        case 'sum':
          out.sum = this.sum + this.comp;
          break;
        case 'mean':
          out.mean = this.mean;
          break;
        case 'stddev':
          out.stddev = Math.sqrt(Math.max(0, this.m2 / this.n));
          break;
        case 'first':
          out.first = this.firstV;
          break;
        case 'last':
          out.last = this.lastV;
          break;
        case 'p50':
          out.p50 = this.quantile(0.5);
          break;
        case 'p95':
          out.p95 = this.quantile(0.95);
          break;
        case 'anomaly_max':
          if (this.scoreMax >= 0) out.anomaly_max = this.scoreMax;
          break;
      }
    }
    return out;
  }

  /**
   * `serialise`: the caller stringifies the result before this accumulator changes again (the
   * incremental checkpoint), so the held values are handed out, not copied (issue 14).
   */
  toJSON(serialise = false): AccumulatorJSON {
    const sk = this.sketch;
    return {
      n: this.n,
      sum: this.sum,
      comp: this.comp,
      mean: this.mean,
      m2: this.m2,
      min: this.min,
      max: this.max,
      first: [this.firstTs, this.firstSeq, this.firstV],
      last: [this.lastTs, this.lastSeq, this.lastV],
      sk: sk ? { p: storeBins(sk.store), n: storeBins(sk.negativeStore), z: sk.zeroCount } : null,
      ...(this.vals !== null ? { v: serialise ? this.vals : [...this.vals] } : {}),
      am: this.scoreMax >= 0 ? this.scoreMax : null,
    };
  }

  static fromJSON(j: AccumulatorJSON): Accumulator {
    const a = new Accumulator(j.sk !== null || Array.isArray(j.v));
    a.n = j.n;
    a.sum = j.sum;
    a.comp = j.comp;
    a.mean = j.mean;
    a.m2 = j.m2;
    a.min = j.min;
    a.max = j.max;
    [a.firstTs, a.firstSeq, a.firstV] = j.first;
    [a.lastTs, a.lastSeq, a.lastV] = j.last;
    if (typeof j.am === 'number' && j.am >= 0) a.scoreMax = j.am;
    if (Array.isArray(j.v) && j.sk === null) a.vals = [...j.v];
    else if (j.sk) {
      const sk = newSketch();
      a.vals = null;
      a.sketch = sk;
      addBins(sk, sk.store, j.sk.p);
      addBins(sk, sk.negativeStore, j.sk.n);
      sk.zeroCount = j.sk.z;
      sk.count += j.sk.z;
    }
    return a;
  }
}
