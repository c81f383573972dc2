// The O(1) pieces of the statistical kinds against slow, obviously right versions (STYLE.md: an oracle
// beside every fast detector): rolling moments against recomputing the window, the time/count window
// against filtering the whole history, and the zscore kind end to end against a naive loop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mean, stddev } from './ring.ts';
import {
  momentsAdd,
  momentsInit,
  momentsRebuild,
  momentsRemove,
  momentsStd,
  type Span,
  spreadFloor,
  twoSidedScore,
  windowInit,
  windowPush,
  windowSize,
} from './stats.ts';
import { harness, T0 } from './testkit.ts';

const values = fc.array(
  fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double({ min: -1e3, max: 1e3, noNaN: true })),
  {
    minLength: 1,
    maxLength: 300,
  },
);

describe('stats: sliding window and moments', () => {
  it('moments with add/remove (and the periodic rebuild) match a recompute of the window', () => {
    fc.assert(
      fc.property(values, fc.integer({ min: 2, max: 40 }), (xs, cap) => {
        const w = windowInit();
        const m = momentsInit();
        const span: Span = { count: cap };
        xs.forEach((x, i) => {
          windowPush(w, span, 10_000, i, x, momentsRemove, m);
          momentsAdd(m, x);
          if (m.removed >= windowSize(w)) momentsRebuild(m, w);
          const kept = xs.slice(Math.max(0, i + 1 - cap), i + 1);
          const scale = Math.max(1, ...kept.map(Math.abs));
          assert.equal(m.n, kept.length);
          assert.ok(Math.abs(m.mean - mean(kept)) <= 1e-9 * scale);
          assert.ok(Math.abs(momentsStd(m) - stddev(kept)) <= 1e-6 * scale);
        });
      }),
    );
  });

  it('a spike leaving the window does not leave rounding noise as spread (fast-check counterexample)', () => {
    const w = windowInit();
    const m = momentsInit();
    for (const [i, x] of [355.03230146054193, 0, 0, 0, 0].entries()) {
      windowPush(w, { count: 4 }, 10_000, i, x, momentsRemove, m);
      momentsAdd(m, x);
      if (m.removed >= windowSize(w)) momentsRebuild(m, w);
    }
    assert.equal(m.n, 4);
    assert.equal(momentsStd(m), 0);
  });

  it('a duration window keeps exactly the values newer than ts - span', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 200 }), (gaps) => {
        const w = windowInit();
        let ts = 0;
        const all: number[] = [];
        for (const g of gaps) {
          ts += g;
          all.push(ts);
          windowPush(w, { ms: 100 }, 10_000, ts, ts, () => {}, null);
          const live = w.vs.slice(w.head);
          assert.deepEqual(
            live,
            all.filter((t) => t > ts - 100),
          );
        }
      }),
    );
  });

  it('floors and scores are finite for constant and quantised input', () => {
    assert.ok(spreadFloor(0, 0, 0) > 0);
    assert.equal(spreadFloor(0, 0.5, 10), 0.25);
    assert.ok(twoSidedScore(0) < 1e-8);
    assert.ok(Math.abs(twoSidedScore(3) - 0.9973) < 1e-4);
    assert.equal(twoSidedScore(Number.POSITIVE_INFINITY), 1);
  });
});

describe('zscore (rolling) against a naive loop', () => {
  it('fires on exactly the readings where |x - mean(prev w)| / max(std(prev w), floor) > threshold', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 10, maxLength: 150 }),
        fc.integer({ min: 3, max: 12 }),
        (xs, w) => {
          const h = harness([{ name: 'z', kind: 'zscore', window: w, threshold: 2.0001, cooldown: 0 }]);
          const fired: number[] = [];
          let firing = false;
          let quantum = 0;
          xs.forEach((x, i) => {
            h.read(x, i * 1000);
            if (i >= w) {
              const base = xs.slice(i - w, i);
              const sd = Math.max(stddev(base), spreadFloor(0, quantum, mean(base)));
              // 2.0001: small integers hit z = 2 exactly, where float rounding of either side decides
              const active = Math.abs(x - mean(base)) / sd > 2.0001;
              if (active && !firing) fired.push(T0 + i * 1000);
              firing = active;
            }
            if (i > 0) {
              const step = Math.abs(x - xs[i - 1]!);
              if (step > 0 && (quantum === 0 || step < quantum)) quantum = step;
            }
          });
          assert.deepEqual(
            h.alerts.filter((a) => a.state === 'firing').map((a) => a.ts),
            fired,
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
