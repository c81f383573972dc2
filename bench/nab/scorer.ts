// NAB's scoring method (Lavin & Ahmad 2015; the spec we implement is SCORING.md in the NAB corpus dir, EDGEFLOW_NAB_DIR,
// written from numenta/NAB's nab/sweeper.py and nab/optimizer.py). Our own code: row weights from the
// scaled sigmoid, one threshold per profile chosen by an exact sweep over the corpus, normalisation to
// null = 0 and perfect = 100. Index based throughout (SCORING.md §1: never re-sort, never use time).

export interface Profile {
  name: 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate';
  tp: number;
  fp: number;
  fn: number;
}

/** config/profiles.json of NAB (SCORING.md §1). */
export const PROFILES: readonly Profile[] = [
  { name: 'standard', tp: 1, fp: 0.11, fn: 1 },
  { name: 'reward_low_FP_rate', tp: 1, fp: 0.22, fn: 1 },
  { name: 'reward_low_FN_rate', tp: 1, fp: 0.11, fn: 2 },
];

/** 2/(1+e^{5y}) − 1, and −1 beyond y = 3 (SCORING.md §3). */
export function scaledSigmoid(y: number): number {
  return y > 3 ? -1 : 2 / (1 + Math.exp(5 * y)) - 1;
}

const MAX_TP = scaledSigmoid(-1);

/** Rows never scored at the start of a file: min(floor(0.15 n), 750) (SCORING.md §2). */
export function probationRows(n: number): number {
  return Math.min(Math.floor(0.15 * n), 0.15 * 5000);
}

/** A labelled window as row indices, both ends inclusive. */
export interface RowWindow {
  left: number;
  right: number;
}

/** Per-row scoring geometry of one file for one profile: weight and window id (−1 outside windows). */
export interface FileRows {
  /** Rows scored (index ≥ probation). */
  start: number;
  weight: Float64Array;
  window: Int32Array;
  windows: number;
}

/** Weights of every row of a file of `n` rows with `wins` (sorted, disjoint) (SCORING.md §3). */
export function fileRows(
  n: number,
  wins: readonly RowWindow[],
  p: Profile,
  probation = probationRows(n),
): FileRows {
  const weight = new Float64Array(n);
  const window = new Int32Array(n).fill(-1);
  let next = 0;
  let cur = -1;
  let prev: { right: number; width: number } | null = null;
  for (let i = 0; i < n; i++) {
    if (cur < 0 && next < wins.length && wins[next]!.left === i) cur = next++;
    if (cur >= 0) {
      const w = wins[cur]!;
      const width = w.right - w.left + 1;
      weight[i] = (scaledSigmoid(-(w.right - i + 1) / width) * p.tp) / MAX_TP;
      window[i] = cur;
      if (i === w.right) {
        prev = { right: i, width };
        cur = -1;
      }
    } else {
      const u = prev === null ? -1 : scaledSigmoid(Math.abs(prev.right - i) / (prev.width - 1));
      weight[i] = u * p.fp;
    }
  }
  return { start: probation, weight, window, windows: wins.length };
}

/** Raw score of one file at threshold `t`: detections are rows with score ≥ t (SCORING.md §4). */
export function fileScore(rows: FileRows, scores: ArrayLike<number>, t: number, p: Profile): number {
  const best = new Array<number>(rows.windows).fill(Number.NEGATIVE_INFINITY);
  let fp = 0;
  for (let i = rows.start; i < scores.length; i++) {
    if (!(scores[i]! >= t)) continue;
    const w = rows.window[i]!;
    if (w < 0) fp += rows.weight[i]!;
    else best[w] = Math.max(best[w]!, rows.weight[i]!);
  }
  let s = fp;
  for (let w = 0; w < rows.windows; w++) {
    if (!windowScored(rows, w)) continue;
    s += best[w] === Number.NEGATIVE_INFINITY ? -p.fn : best[w]!;
  }
  return s;
}

function windowScored(rows: FileRows, w: number): boolean {
  for (let i = rows.start; i < rows.window.length; i++) if (rows.window[i] === w) return true;
  return false;
}

export interface Scored {
  rows: FileRows;
  scores: ArrayLike<number>;
}

export interface SweepPoint {
  threshold: number;
  raw: number;
}

/**
 * The exact sweep of NAB's optimiser over every distinct score of the corpus, highest first; the
 * first maximum wins (the highest threshold on ties). Returns the whole table and the best entry.
 */
export function sweep(files: readonly Scored[], p: Profile): { table: SweepPoint[]; best: SweepPoint } {
  const pts: SweepInput[] = [];
  let nWin = 0;
  for (const f of files) {
    for (let i = f.rows.start; i < f.scores.length; i++) {
      const win = f.rows.window[i]!;
      pts.push({ score: f.scores[i]!, weight: f.rows.weight[i]!, window: win < 0 ? -1 : nWin + win });
    }
    nWin += f.rows.windows;
  }
  return sweepPoints(pts, p.fn);
}

/** One scorable row for the sweep: its score, its weight and its window (−1 outside every window). */
export interface SweepInput {
  score: number;
  weight: number;
  window: number;
}

/** The sweep itself over scorable rows (SCORING.md §5); sorts `pts` in place. */
export function sweepPoints(pts: SweepInput[], fnWeight: number): { table: SweepPoint[]; best: SweepPoint } {
  pts.sort((a, b) => b.score - a.score);
  const part = new Map<number, number>();
  for (const q of pts) if (q.window >= 0) part.set(q.window, -fnWeight);
  let total = -fnWeight * part.size;
  let fp = 0;
  let cur = 1.1;
  const table: SweepPoint[] = [];
  for (const q of pts) {
    if (q.score !== cur) {
      table.push({ threshold: cur, raw: total + fp });
      cur = q.score;
    }
    if (q.window < 0) fp += q.weight;
    else {
      const old = part.get(q.window)!;
      if (q.weight > old) {
        part.set(q.window, q.weight);
        total += q.weight - old;
      }
    }
  }
  table.push({ threshold: cur, raw: total + fp });
  let best = table[0]!;
  for (const e of table) if (e.raw > best.raw) best = e;
  return { table, best };
}

/** 100·(raw − null)/(perfect − null) with null = −fn·W and perfect = tp·W (SCORING.md §6). */
export function normalise(raw: number, windows: number, p: Profile): number {
  const nul = -p.fn * windows;
  return (100 * (raw - nul)) / (p.tp * windows - nul);
}
