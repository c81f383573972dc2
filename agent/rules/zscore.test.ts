import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gauss, harness, rng } from './testkit.ts';

function noise(n: number, seed: number, mean = 20, sd = 1): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => mean + sd * gauss(r));
}

describe('zscore (rolling)', () => {
  const rule = { name: 'z', kind: 'zscore', window: 50, threshold: 4 } as const;

  it('does not fire on stationary noise', () => {
    const h = harness([rule]);
    h.series(noise(1000, 1), 0, 1000);
    assert.equal(h.alerts.length, 0);
  });

  it('fires on an outlier and resolves on the next normal value', () => {
    const h = harness([rule]);
    const t = h.series(noise(100, 2), 0, 1000);
    h.read(30, t);
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.value, 30);
    assert.match(h.alerts[0]!.message, /z=\d/);
    h.read(20, t + 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
  });

  it('cannot fire during warm-up', () => {
    const h = harness([{ ...rule, warmup: 20 }]);
    const t = h.series(noise(19, 3), 0, 1000);
    h.read(1000, t);
    assert.equal(h.alerts.length, 0);
    h.read(1000, t + 1000);
    assert.deepEqual(h.states(), ['firing'], 'the 21st value has 20 in its baseline');
  });

  it('exactly at the threshold does not fire; just above does', () => {
    // A constant baseline has std 0, raised to minStd 1: z is exactly value - 10.
    // (One step per harness: a step of 3 would make 3 the series' quantum and raise the floor to 1.5.)
    const rule = { name: 'z', kind: 'zscore', window: 5, threshold: 3, minStd: 1 } as const;
    for (const [v, states] of [
      [13, []],
      [7, []],
      [13.001, ['firing']],
    ] as const) {
      const h = harness([rule]);
      const t = h.series([10, 10, 10, 10, 10], 0, 1000);
      h.read(v, t);
      assert.deepEqual(h.states(), states, `value ${v}`);
    }
  });

  it('a constant baseline without minStd: any different value fires, the same value does not', () => {
    const h = harness([{ name: 'z', kind: 'zscore', window: 5 }]);
    const t = h.series([10, 10, 10, 10, 10, 10], 0, 1000);
    assert.equal(h.alerts.length, 0);
    h.read(10.5, t);
    assert.deepEqual(h.states(), ['firing']);
  });
});

describe('zscore (ewma)', () => {
  const rule = { name: 'zew', kind: 'zscore', mode: 'ewma', alpha: 0.05, threshold: 5, warmup: 50 } as const;

  it('does not fire on stationary noise, fires on an outlier, resolves after', () => {
    const h = harness([rule]);
    const t = h.series(noise(600, 4), 0, 1000);
    assert.equal(h.alerts.length, 0);
    h.read(35, t);
    assert.deepEqual(h.states(), ['firing']);
    h.read(20, t + 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
  });

  it('adapts to a slow drift instead of firing', () => {
    const h = harness([rule]);
    const r = rng(5);
    for (let i = 0; i < 2000; i++) h.read(20 + i * 0.005 + 0.5 * gauss(r), i * 1000);
    assert.equal(h.alerts.length, 0);
  });
});
