import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { harness, T0 } from './testkit.ts';

const stuck = { name: 'stuck', kind: 'flatline', for: '30s' } as const;

describe('flatline', () => {
  it('fires when the value has not changed for exactly `for`, not before', () => {
    const h = harness([stuck]);
    h.series([5, 5, 5], 0, 10_000);
    assert.equal(h.alerts.length, 0, '20s flat');
    h.read(5, 30_000);
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.ts, T0 + 30_000);
    assert.match(h.alerts[0]!.message, /stuck at 5/);
  });

  it('resolves on the first change, and the change starts a new run', () => {
    const h = harness([stuck]);
    h.series([5, 5, 5, 5, 5, 6], 0, 10_000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    assert.equal(h.alerts[1]!.ts, T0 + 50_000);
    h.series([6, 6], 60_000, 10_000); // run of 6 began at 50s: 20s
    assert.equal(h.alerts.length, 2);
    h.read(6, 80_000);
    assert.deepEqual(h.states(), ['firing', 'resolved', 'firing']);
  });

  it('does not fire on a changing signal', () => {
    const h = harness([stuck]);
    h.series([1, 2, 1, 2, 1, 2, 1, 2], 0, 10_000);
    assert.equal(h.alerts.length, 0);
  });

  it('tolerance: jitter inside it is still flat; a drift beyond it from the run start is a change', () => {
    const h = harness([{ ...stuck, tolerance: 0.1 }]);
    h.series([5, 5.05, 4.95, 5.1], 0, 10_000);
    assert.deepEqual(h.states(), ['firing'], '|Δ| <= tolerance counts as unchanged');
    const h2 = harness([{ ...stuck, tolerance: 0.1 }]);
    h2.series([5, 5.06, 5.12, 5.18], 0, 10_000); // steps of 0.06 < 0.1, but 5.12 is 0.12 from 5
    assert.equal(h2.alerts.length, 0);
  });
});
