import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { harness, T0 } from './testkit.ts';

// 3 failures (value == 0) in 5 minutes.
const flaky = { name: 'flaky', kind: 'pattern', when: 'value == 0', count: 3, within: '5m' } as const;

describe('pattern', () => {
  it('fires on the Nth matching event within the window', () => {
    const h = harness([flaky]);
    h.series([0, 1, 0, 1], 0, 60_000);
    assert.equal(h.alerts.length, 0);
    h.read(0, 240_000);
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.ts, T0 + 240_000);
  });

  it('counts events exactly `within` apart together (inclusive window), but not further apart', () => {
    const h = harness([flaky]);
    h.series([0, 0, 0], 0, 150_000); // 0, 2.5m, 5m
    assert.deepEqual(h.states(), ['firing']);
    const h2 = harness([flaky]);
    h2.read(0, 0);
    h2.read(0, 150_000);
    h2.read(0, 300_001);
    assert.equal(h2.alerts.length, 0);
  });

  it('resolves when the count in the sliding window drops below N', () => {
    const h = harness([flaky]);
    h.series([0, 0, 0], 0, 10_000); // at 0, 10s, 20s
    h.read(1, 300_000); // the match at 0 is still inside [0, 300s]
    assert.deepEqual(h.states(), ['firing']);
    h.read(1, 300_001);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    assert.equal(h.alerts[1]!.ts, T0 + 300_001);
  });

  it('does not fire on scattered failures', () => {
    const h = harness([flaky]);
    h.series([0, 1, 1, 0, 1, 1, 0, 1, 1, 0], 0, 60_000 + 1); // two per 5m at most
    assert.equal(h.alerts.length, 0);
  });

  it('keeps bounded state: only the last N matches are kept', () => {
    const h = harness([flaky]);
    h.series(Array(1000).fill(0), 0, 10);
    const snap = h.engine.snapshot();
    const det = snap.rules[0]!.keys[0]!.det as { hits: number[] };
    assert.equal(det.hits.length, 3);
  });
});
