// `npm run bench -- nab`: every statistical rule kind at its documented defaults, and the `anomaly`
// kind, over the NAB corpus in EDGEFLOW_NAB_DIR (shared/outside.ts; issue 11), scored by our own implementation of
// NAB's method (bench/nab/scorer.ts). One RuleEngine per file, one key, event time = row time, one
// configuration for all files. Two scores per profile:
//   alerts  the product's own decision: a detection is a row where a `firing` alert was emitted
//           (the rule's threshold, `for` and `cooldown` decide; nothing is tuned on the corpus)
//   sweep   NAB's own procedure on the per-reading score: the best single threshold over the corpus
//           (an upper bound on what re-tuning the threshold could give; NAB tunes it on the test data)
// plus alerts fired and readings/s through the rule (one core, the whole corpus, scoring excluded).
// `npm run bench -- anomaly-keys` measures the anomaly kind with 10,000 active keys (bench/anomaly-keys.ts).

import { RuleEngine, type RuleSpec, type RuleSpecInput } from '../agent/rules/engine.ts';
import { FakeClock } from '../shared/clock.ts';
import { notFound } from '../shared/outside.ts';
import { type BenchResult, isMain, printResult } from './lib.ts';
import { loadNab, NAB_DIR, type NabFile, nabPresent } from './nab/corpus.ts';
import { fileRows, fileScore, normalise, PROFILES, sweep } from './nab/scorer.ts';

/** Each kind as its README documents it, without tuning (`when` is required for rate: its scale-free form). */
export const NAB_SPECS: RuleSpecInput[] = [
  { name: 'zscore-rolling', kind: 'zscore' },
  { name: 'zscore-ewma', kind: 'zscore', mode: 'ewma' },
  { name: 'spike', kind: 'spike' },
  { name: 'changepoint', kind: 'changepoint' },
  { name: 'rate-scaled', kind: 'rate', scaled: true, when: 'abs(rate) > 10' },
  { name: 'anomaly', kind: 'anomaly' },
];

export interface FileRun {
  file: NabFile;
  detections: Float64Array;
  scores: Float64Array;
  alerts: number;
}

/** Feeds one file through a fresh engine with `spec`; returns detection rows and per-row scores. */
export function runFile(f: NabFile, spec: RuleSpecInput): FileRun & { seconds: number } {
  let fired = 0;
  let alerts = 0;
  const engine = new RuleEngine(
    [spec as RuleSpec],
    { agentId: 'nab-bench', clock: new FakeClock(f.ts[0]!) },
    {
      alert(a) {
        if (a.state === 'firing') {
          fired++;
          alerts++;
        }
      },
    },
  );
  const n = f.ts.length;
  const detections = new Float64Array(n);
  const scores = new Float64Array(n);
  const r = { device: 'nab', metric: 'value', value: 0, ts: 0 };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    r.value = f.values[i]!;
    r.ts = f.ts[i]!;
    scores[i] = engine.onReading(r) ?? 0;
    if (fired > 0) {
      detections[i] = 1;
      fired = 0;
    }
  }
  return { file: f, detections, scores, alerts, seconds: (performance.now() - t0) / 1000 };
}

export interface NabRow extends Record<string, unknown> {
  rule: string;
  'standard (alerts)': number;
  'low FP (alerts)': number;
  'low FN (alerts)': number;
  'standard (sweep)': number;
  'low FP (sweep)': number;
  'low FN (sweep)': number;
  alerts: number;
  'readings/s': number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

export function scoreRuns(runs: FileRun[]) {
  const windows = runs.reduce((s, r) => s + r.file.windows.length, 0);
  const out: Record<string, { alerts: number; sweep: number; threshold: number }> = {};
  for (const p of PROFILES) {
    const rows = runs.map((r) => fileRows(r.file.ts.length, r.file.windows, p));
    const raw = runs.reduce((s, r, i) => s + fileScore(rows[i]!, r.detections, 0.5, p), 0);
    const sw = sweep(
      runs.map((r, i) => ({ rows: rows[i]!, scores: r.scores })),
      p,
    );
    out[p.name] = {
      alerts: normalise(raw, windows, p),
      sweep: normalise(sw.best.raw, windows, p),
      threshold: sw.best.threshold,
    };
  }
  return out;
}

export async function benchNab(specs = NAB_SPECS): Promise<BenchResult> {
  if (!nabPresent()) return { rows: [], notes: [`${notFound('nab', 'NAB data')}: skipped`] };
  const files = loadNab();
  const rows: NabRow[] = [];
  const perFile: Record<string, Record<string, number>> = {};
  for (const spec of specs) {
    const runs = files.map((f) => runFile(f, spec));
    const s = scoreRuns(runs);
    const readings = runs.reduce((a, r) => a + r.file.ts.length, 0);
    const seconds = runs.reduce((a, r) => a + r.seconds, 0);
    rows.push({
      rule: spec.name,
      'standard (alerts)': r1(s.standard!.alerts),
      'low FP (alerts)': r1(s.reward_low_FP_rate!.alerts),
      'low FN (alerts)': r1(s.reward_low_FN_rate!.alerts),
      'standard (sweep)': r1(s.standard!.sweep),
      'low FP (sweep)': r1(s.reward_low_FP_rate!.sweep),
      'low FN (sweep)': r1(s.reward_low_FN_rate!.sweep),
      alerts: runs.reduce((a, r) => a + r.alerts, 0),
      'readings/s': Math.round(readings / seconds),
    });
    perFile[spec.name] = Object.fromEntries(
      runs.map((r) => [
        r.file.key,
        r1(
          fileScore(
            fileRows(r.file.ts.length, r.file.windows, PROFILES[0]!),
            r.detections,
            0.5,
            PROFILES[0]!,
          ),
        ),
      ]),
    );
  }
  return {
    rows,
    files: files.length,
    windows: files.reduce((s, f) => s + f.windows.length, 0),
    readings: files.reduce((s, f) => s + f.ts.length, 0),
    perFileStandardRaw: perFile,
    notes: [
      `${files.length} files from ${NAB_DIR}; alerts = firing alerts of the rule as configured; sweep = NAB's best single threshold on the per-reading score`,
      'published detectors on the same 35 files (SCORING.md §11, standard / low FP / low FN): ARTime 67.5/56.6/73.5, HTM 66.5/60.0/71.0, contextOSE 61.2/56.9/66.3, windowedGaussian 21.9/4.9/29.2',
    ],
  };
}

if (isMain(import.meta.url)) {
  // `node --import tsx bench/nab.ts '[{"name":"x","kind":"spike","threshold":7}]'` scores other specs
  const arg = process.argv[2];
  printResult('nab', await benchNab(arg ? (JSON.parse(arg) as RuleSpecInput[]) : NAB_SPECS));
}
