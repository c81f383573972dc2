// The `anomaly` kind's model (issue 11, docs/design/anomaly.md): one per (rule, device, metric) key,
// O(1) per reading, plain JSON state of fixed size (about 450 numbers: ~4.9 KB in memory, 1.8 KB in
// the checkpoint, measured by bench/anomaly-keys.ts; the daily and weekly profiles are most of it).
// Three steps per reading:
//
//   1. predict: several predictors run side by side and the one with the smallest recent absolute
//      error is trusted: persistence (last value), smoothed levels at a short and a long time
//      constant, and a daily (48 × 30 min) and a weekly (168 × 1 h) profile of the level, each
//      usable once it has seen a full period. A series without a daily shape never picks the profile
//      (its error is no smaller), so "when the series shows one" needs no separate test.
//   2. raw score: the error of that predictor over its own recent mean absolute error, floored by the
//      series' quantum (the smallest step seen) so quantised and constant series give finite scores.
//   3. anomaly likelihood: the recent mean of the raw scores (short span) against the long-run
//      distribution of that mean (mean and variance at a long span): its Gaussian tail probability,
//      on a log scale so that score 0.5 is a tail of 1e-5 and 1 a tail of 1e-10 (the step NAB's best
//      detectors put on top of their predictors). A value outside every value seen so far by more
//      than the trusted predictor's usual error (and than `noveltyMargin` of the range) is a novelty and
//      scores 1.
//
// Every smoothing constant is a duration, applied as alpha = 1 − exp(−Δt/τ) with the real gap Δt, so
// one configuration means the same time spans on 1 s and on 1 h data.

/** Tunables, all spans in milliseconds (schema defaults in anomaly.ts). */
export interface AnomalyParams {
  /** No score before this much event time and `minSamples` readings. */
  warmupMs: number;
  minSamples: number;
  /** Short and long smoothing of the level (the fast and slow predictors). */
  fastMs: number;
  slowMs: number;
  /** Span of each predictor's recent absolute error (the raw score's scale and the selection). */
  errorMs: number;
  /** Span of the recent mean of raw scores the likelihood tests. */
  shortMs: number;
  /** Span of the long-run distribution of that mean. */
  longMs: number;
  /** How many periods a profile bin remembers. */
  profilePeriods: number;
  /** A new extreme must also be this far outside the range seen (fraction of the range) to score 1. */
  noveltyMargin: number;
  /** ... and by this many of the trusted predictor's usual errors. */
  noveltyErrors: number;
  /** Smallest spread of the recent mean of raw scores the likelihood assumes. */
  sdFloor: number;
}

export const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
const DAY_BINS = 48;
const WEEK_BINS = 168;
// Predictors: 0 last value, 1 fast level, 2 slow level, 3 daily profile, 4 weekly profile.
const NP = 5;
/** A bin counts once it has seen this much of its own time (a quarter of its width). */
const BIN_READY = 0.25;
/** ln of the smallest tail the score distinguishes (score 1). */
const LN_TAIL_MIN = Math.log(1e-10);

export interface AnomalyState {
  n: number;
  t0: number;
  lastTs: number;
  last: number;
  fast: number;
  slow: number;
  min: number;
  max: number;
  /** Smallest non-zero step between consecutive values (the series' quantum). */
  quantum: number;
  /** Per predictor: recent mean absolute error and its prediction for the next reading. */
  mae: number[];
  pred: number[];
  /** Profile bin means and their accumulated weight (time seen, in bin widths, capped). */
  day: number[];
  dayW: number[];
  week: number[];
  weekW: number[];
  /** Recent mean of raw scores, and the long-run mean and variance of that mean. */
  short: number;
  longMean: number;
  longVar: number;
}

export function anomalyInit(): AnomalyState {
  return {
    n: 0,
    t0: 0,
    lastTs: 0,
    last: 0,
    fast: 0,
    slow: 0,
    min: 0,
    max: 0,
    quantum: 0,
    mae: new Array<number>(NP).fill(0),
    pred: new Array<number>(NP).fill(0),
    day: new Array<number>(DAY_BINS).fill(0),
    dayW: new Array<number>(DAY_BINS).fill(0),
    week: new Array<number>(WEEK_BINS).fill(0),
    weekW: new Array<number>(WEEK_BINS).fill(0),
    short: 0,
    longMean: 0,
    longVar: 0,
  };
}

const alphaOf = (dt: number, tau: number): number => 1 - Math.exp(-dt / tau);

/** Standard normal upper tail Q(z) (Abramowitz & Stegun 7.1.26 via erfc, |error| < 1.5e-7 relative). */
export function normalTail(z: number): number {
  if (z < 0) return 1 - normalTail(-z);
  const x = z / Math.SQRT2;
  // erfc for large x by its asymptotic continued fraction would be exact-er; 26.2.17's rational
  // approximation keeps 7 digits down to tails of 1e-300, enough for a log scale floored at 1e-10.
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return 0.5 * poly * Math.exp(-x * x);
}

export interface AnomalyResult {
  /** [0, 1]; null while warming up. */
  score: number | null;
  /** The trusted predictor's prediction and the raw (normalised) error, for the alert's detail. */
  predicted: number;
  error: number;
}

/**
 * Feeds one reading; returns its score. Readings not newer than the previous one update nothing
 * (the model is a function of the time-ordered series) and score null.
 */
export function anomalyUpdate(s: AnomalyState, p: AnomalyParams, ts: number, x: number): AnomalyResult {
  if (s.n === 0) {
    s.n = 1;
    s.t0 = ts;
    s.lastTs = ts;
    s.last = x;
    s.fast = x;
    s.slow = x;
    s.min = x;
    s.max = x;
    s.pred.fill(x);
    return { score: null, predicted: x, error: 0 };
  }
  const dt = ts - s.lastTs;
  if (!(dt > 0)) return { score: null, predicted: s.last, error: 0 };

  // 1. which predictor has been best (before seeing x), and its error now
  let best = 0;
  for (let i = 1; i < NP; i++) if (ready(s, i, ts) && s.mae[i]! < s.mae[best]!) best = i;
  const predicted = s.pred[best]!;
  const floor = Math.max(s.quantum, 1e-12 * Math.max(Math.abs(x), Math.abs(predicted)), 1e-300);
  const scale = Math.max(s.mae[best]!, floor);
  const error = (x - predicted) / scale;

  // 2. raw score: bounded, monotone in |error|; log1p keeps a 100σ outlier from swamping the
  //    long-run variance the next hours are judged against.
  const raw = Math.log1p(Math.abs(error));

  // Novelty against the range seen before this reading: beyond it by a share of the range and by
  // more than the trusted predictor's usual error (without the second condition a Gaussian series
  // sets a "novel" record every so often: measured, one false alarm in 2 days at 1/min).
  const range = s.max - s.min;
  const beyond = Math.max(p.noveltyMargin * range, p.noveltyErrors * scale);
  const novel = range > 0 && (x > s.max + beyond || x < s.min - beyond);

  // 3. likelihood of the recent mean of raw scores under its long-run distribution
  const aShort = alphaOf(dt, p.shortMs);
  s.short += aShort * (raw - s.short);
  const sd = Math.max(Math.sqrt(s.longVar), p.sdFloor);
  const z = (s.short - s.longMean) / sd;
  const tail = Math.max(normalTail(z), 1e-300);
  const aLong = alphaOf(dt, p.longMs);
  const d = s.short - s.longMean;
  s.longMean += aLong * d;
  s.longVar = (1 - aLong) * (s.longVar + aLong * d * d);

  // learn: every predictor's error, then the state
  const aErr = s.n === 1 ? 1 : alphaOf(dt, p.errorMs);
  for (let i = 0; i < NP; i++) s.mae[i] = s.mae[i]! + aErr * (Math.abs(x - s.pred[i]!) - s.mae[i]!);
  const step = Math.abs(x - s.last);
  if (step > 0 && (s.quantum === 0 || step < s.quantum)) s.quantum = step;
  s.fast += alphaOf(dt, p.fastMs) * (x - s.fast);
  s.slow += alphaOf(dt, p.slowMs) * (x - s.slow);
  learnBin(s.day, s.dayW, binOf(ts, DAY_MS, DAY_BINS), x, dt / (DAY_MS / DAY_BINS), p.profilePeriods);
  learnBin(s.week, s.weekW, binOf(ts, WEEK_MS, WEEK_BINS), x, dt / (WEEK_MS / WEEK_BINS), p.profilePeriods);
  if (x < s.min) s.min = x;
  if (x > s.max) s.max = x;
  s.last = x;
  s.lastTs = ts;
  s.n = Math.min(s.n + 1, Number.MAX_SAFE_INTEGER);
  const next = ts + dt; // the profiles predict the next reading at its own time of day
  s.pred[0] = x;
  s.pred[1] = s.fast;
  s.pred[2] = s.slow;
  s.pred[3] = binValue(s.day, s.dayW, binOf(next, DAY_MS, DAY_BINS), s.slow);
  s.pred[4] = binValue(s.week, s.weekW, binOf(next, WEEK_MS, WEEK_BINS), s.slow);

  if (ts - s.t0 < p.warmupMs || s.n < p.minSamples) return { score: null, predicted, error };
  if (novel) return { score: 1, predicted, error };
  // log scale: tail 1e-10 → 1, tail 1 → 0 (score 0.5 is a tail of 1e-5)
  const score = Math.min(1, Math.max(0, Math.log(tail) / LN_TAIL_MIN));
  return { score, predicted, error };
}

function ready(s: AnomalyState, i: number, ts: number): boolean {
  if (i === 3) return ts - s.t0 >= DAY_MS;
  if (i === 4) return ts - s.t0 >= WEEK_MS;
  return true;
}

function binOf(ts: number, period: number, bins: number): number {
  const phase = ((ts % period) + period) % period;
  return Math.min(bins - 1, Math.floor((phase / period) * bins));
}

function learnBin(m: number[], w: number[], b: number, x: number, seen: number, periods: number): void {
  // Each visit to a bin moves it by 1/periods of a full bin's worth; the first visits average.
  const wt = w[b]!;
  const gain = wt < 1 ? seen / Math.max(wt + seen, 1e-9) : alphaOf(seen, periods);
  m[b] = m[b]! + Math.min(1, gain) * (x - m[b]!);
  w[b] = Math.min(wt + seen, 1e6);
}

function binValue(m: number[], w: number[], b: number, fallback: number): number {
  return w[b]! >= BIN_READY ? m[b]! : fallback;
}
