import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gauss, harness, rng } from './testkit.ts';

describe('spike', () => {
  it('rarely fires on Gaussian noise with the defaults (at most 3 per 10,000 values)', () => {
    const h = harness([{ name: 'sp', kind: 'spike' }]); // defaults: window 60, threshold 5
    const r = rng(7);
    h.series(
      Array.from({ length: 10_000 }, () => 20 + 0.5 * gauss(r)),
      0,
      1000,
    );
    assert.ok(h.engine.stats().alertsFired <= 3, `${h.engine.stats().alertsFired} false alarms`);
  });

  it('fires on a spike in noise and resolves on the next normal value', () => {
    const h = harness([{ name: 'sp', kind: 'spike' }]);
    const r = rng(8);
    const t = h.series(
      Array.from({ length: 200 }, () => 20 + 0.5 * gauss(r)),
      0,
      1000,
    );
    const before = h.alerts.length;
    h.read(40, t);
    h.read(20.1, t + 1000);
    assert.deepEqual(
      h.alerts.slice(before).map((a) => [a.state, a.value]),
      [
        ['firing', 40],
        ['resolved', 20.1],
      ],
    );
  });

  it('default threshold 5: a 4-MAD-sigma value does not fire, a 6 does', () => {
    const h = harness([{ name: 'sp', kind: 'spike', window: 5 }]);
    const t = h.series([8, 9, 10, 11, 12], 0, 1000);
    h.read(10 + 4 * 1.4826, t);
    assert.equal(h.alerts.length, 0);
    h.read(10 + 6 * 1.4826, t + 1000);
    assert.deepEqual(h.states(), ['firing']);
  });

  it('exactly at the threshold does not fire; just above does', () => {
    // Baseline 8..12: median 10, MAD 1, so the score is |x - 10| / 1.4826.
    const x = 15.1891;
    const threshold = (x - 10) / (1.4826 * 1);
    const h = harness([{ name: 'sp', kind: 'spike', window: 5, threshold }]);
    const t = h.series([8, 9, 10, 11, 12], 0, 1000);
    h.read(x, t);
    assert.equal(h.alerts.length, 0);
    const h2 = harness([{ name: 'sp', kind: 'spike', window: 5, threshold }]);
    h2.series([8, 9, 10, 11, 12, x + 1e-9], 0, 1000);
    assert.deepEqual(h2.states(), ['firing']);
  });

  // Baseline 10..13 (median 11.5, MAD 1). Outlier 20, normal 11.5, then 15:
  //  - 20 kept out: baseline 11,12,13,11.5 → median 11.75, MAD 0.5 → 15 scores 4.4: fires;
  //  - 20 admitted: baseline 12,13,20,11.5 → median 12.5, MAD 0.75 → 15 scores 2.2: masked.
  const seq = [10, 11, 12, 13, 20, 11.5, 15];

  it('an outlier is not added to the baseline, so it does not mask the next one', () => {
    const h = harness([{ name: 'sp', kind: 'spike', window: 4, threshold: 3.5, cooldown: 0 }]);
    h.series(seq, 0, 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved', 'firing']);
    assert.deepEqual(
      h.alerts.map((a) => a.value),
      [20, 11.5, 15],
    );
  });

  it('(control) admitting every outlier at once (adaptAfter: 1) masks the second spike', () => {
    const h = harness([{ name: 'sp', kind: 'spike', window: 4, threshold: 3.5, adaptAfter: 1 }]);
    h.series(seq, 0, 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
  });

  it('a level shift is admitted after adaptAfter consecutive outliers and the alert resolves', () => {
    const h = harness([{ name: 'sp', kind: 'spike', window: 5, adaptAfter: 5 }]);
    const t = h.series([8, 9, 10, 11, 12], 0, 1000);
    h.series([50, 51, 49, 50, 52], t, 1000);
    assert.deepEqual(h.states(), ['firing'], 'still firing during the first 5 shifted values');
    h.read(50.5, t + 5000);
    assert.deepEqual(h.states(), ['firing', 'resolved'], 'the new level is the baseline now');
  });

  it('cannot fire before the baseline is warm', () => {
    const h = harness([{ name: 'sp', kind: 'spike', window: 10, warmup: 5 }]);
    h.series([10, 10, 11, 10, 1000], 0, 1000);
    assert.equal(h.alerts.length, 0);
    h.read(1000, 5000);
    assert.deepEqual(h.states(), ['firing']);
  });
});
