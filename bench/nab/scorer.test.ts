// The scorer against the reference values of SCORING.md §8 (taken from NAB's own scorer and sweeper
// tests) and against the two fixed points of the normalisation on the corpus present (null = 0,
// perfect = 100).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadNab, nabPresent } from './corpus.ts';
import {
  fileRows,
  fileScore,
  normalise,
  PROFILES,
  type Profile,
  probationRows,
  scaledSigmoid,
  sweep,
  sweepPoints,
} from './scorer.ts';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b}`);
const standard = PROFILES[0]!;

describe('NAB scorer', () => {
  it('scaledSigmoid matches the reference constants', () => {
    close(scaledSigmoid(-1), 0.9866142981514305);
    close(scaledSigmoid(-0.5), 0.8482836399575131);
    assert.equal(scaledSigmoid(3.0001), -1);
  });

  it('probation is min(floor(0.15 n), 750)', () => {
    assert.deepEqual([4032, 1243, 5000, 22695].map(probationRows), [604, 186, 750, 750]);
  });

  it("reproduces NAB's scorer_test: windows 30-34 and 65-69, detections at 30, 31, 37", () => {
    const unit: Profile = { name: 'standard', tp: 1, fp: 1, fn: 1 };
    const rows = fileRows(
      100,
      [
        { left: 30, right: 34 },
        { left: 65, right: 69 },
      ],
      unit,
      0,
    );
    const scores = new Array<number>(100).fill(0);
    for (const i of [30, 31, 37]) scores[i] = 1;
    close(fileScore(rows, scores, 0.5, unit), -0.9540452601799487);
  });

  it("reproduces NAB's sweeper_test table", () => {
    const { table, best } = sweepPoints(
      [
        { score: 0.0, weight: -3, window: -1 },
        { score: 0.2, weight: 20, window: 0 },
        { score: 0.3, weight: 10, window: 0 },
        { score: 0.5, weight: 5, window: 1 },
        { score: 0.5, weight: -3, window: -1 },
      ],
      5,
    );
    assert.deepEqual(
      table.map((e) => [e.threshold, e.raw]),
      [
        [1.1, -10],
        [0.5, -3],
        [0.3, 12],
        [0.2, 22],
        [0, 19],
      ],
    );
    assert.deepEqual(best, { threshold: 0.2, raw: 22 });
  });

  it('no windows and no detection scores 0; one false positive before any window costs fpWeight', () => {
    const rows = fileRows(10, [], standard, 0);
    close(fileScore(rows, new Array(10).fill(0), 0.5, standard), 0);
    const one = new Array(10).fill(0);
    one[4] = 1;
    close(fileScore(rows, one, 0.5, standard), -standard.fp);
  });

  it('the sweep at a threshold equals fileScore at that threshold', () => {
    const rows = fileRows(200, [{ left: 100, right: 119 }], standard, 0);
    const scores = Array.from({ length: 200 }, (_, i) => ((i * 37) % 101) / 100);
    const { table } = sweep([{ rows, scores }], standard);
    for (const e of table) close(e.raw, fileScore(rows, scores, e.threshold, standard), 1e-9);
  });

  it('on the corpus present, the null detector scores 0 and a perfect one 100 in every profile', {
    skip: nabPresent() ? false : 'NAB data not present',
  }, () => {
    const files = loadNab();
    const windows = files.reduce((s, f) => s + f.windows.length, 0);
    assert.equal(windows, 55);
    for (const p of PROFILES) {
      const nul = files.map((f) => ({
        rows: fileRows(f.ts.length, f.windows, p),
        scores: new Array(f.ts.length).fill(0.5),
      }));
      close(normalise(sweep(nul, p).best.raw, windows, p), 0, 1e-9);
      const perfect = files.map((f) => {
        const s = new Array<number>(f.ts.length).fill(0);
        for (const w of f.windows) s[w.left] = 1;
        return { rows: fileRows(f.ts.length, f.windows, p), scores: s };
      });
      close(normalise(sweep(perfect, p).best.raw, windows, p), 100, 1e-9);
    }
  });
});
