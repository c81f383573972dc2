import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gauss, harness, rng, T0 } from './testkit.ts';

describe('changepoint (CUSUM)', () => {
  const rule = { name: 'cp', kind: 'changepoint' } as const; // defaults: warmup 100, k 0.5, h 10

  it('does not fire on a stationary series', () => {
    const h = harness([rule]);
    const r = rng(11);
    h.series(
      Array.from({ length: 2000 }, () => 10 + gauss(r)),
      0,
      1000,
    );
    assert.equal(h.alerts.length, 0);
  });

  it('fires within a few samples of a 2σ level shift, up or down, and resolves on the next value', () => {
    for (const dir of [1, -1]) {
      const h = harness([rule]);
      const r = rng(12);
      const t = h.series(
        Array.from({ length: 200 }, () => 10 + gauss(r)),
        0,
        1000,
      );
      h.series(
        Array.from({ length: 20 }, () => 10 + dir * 2 + gauss(r)),
        t,
        1000,
      );
      assert.equal(h.states()[0], 'firing', `direction ${dir}`);
      assert.ok(h.alerts[0]!.ts - (t + T0) < 15_000, 'detected within 15 samples');
      assert.match(h.alerts[0]!.message, dir > 0 ? /shift up/ : /shift down/);
      assert.equal(h.states()[1], 'resolved');
    }
  });

  it('exactly at h does not fire; the next step above does', () => {
    // Constant warm-up (σ raised to minStd 1), then +1σ per value: S+ grows by 1 - k = 0.5 each.
    const h = harness([{ name: 'cp', kind: 'changepoint', warmup: 2, k: 0.5, h: 5, minStd: 1 }]);
    const t = h.series([10, 10], 0, 1000);
    h.series(Array(10).fill(11), t, 1000); // S+ = 5.0
    assert.equal(h.alerts.length, 0);
    h.read(11, t + 10_000); // S+ = 5.5
    assert.deepEqual(h.states(), ['firing']);
  });

  it('resets after firing: learns the new level, then detects the next shift', () => {
    const h = harness([{ name: 'cp', kind: 'changepoint', warmup: 2, k: 0.5, h: 5, minStd: 1, cooldown: 0 }]);
    let t = h.series([10, 10], 0, 1000);
    t = h.series(Array(11).fill(11), t, 1000);
    assert.deepEqual(h.states(), ['firing']);
    t = h.series([20, 20], t, 1000); // warm-up on the new level (the first value resolves)
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    t = h.series(Array(10).fill(20), t, 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved'], 'new level is the reference');
    h.series(Array(11).fill(19), t, 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved', 'firing']);
  });
});
