import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { harness, T0 } from './testkit.ts';

const fast = { name: 'fast', kind: 'rate', when: 'abs(rate) > 5' } as const;

describe('rate', () => {
  it('fires on a change faster than the limit; the alert value is the rate per second', () => {
    const h = harness([fast]);
    h.read(0, 0);
    h.read(1, 1000);
    assert.equal(h.alerts.length, 0);
    h.read(13, 3000); // +12 in 2s = 6/s
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.value, 6);
    assert.equal(h.alerts[0]!.ts, T0 + 3000);
  });

  it('resolves when the rate falls back under the limit; negative rates count through abs()', () => {
    const h = harness([fast]);
    h.series([0, -10, -12], 0, 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    assert.equal(h.alerts[0]!.value, -10);
    assert.equal(h.alerts[1]!.value, -2);
  });

  it('exactly at the limit does not fire a strict comparison', () => {
    const h = harness([fast]);
    h.series([0, 5, 10, 5], 0, 1000);
    assert.equal(h.alerts.length, 0);
  });

  it('uses event time, not arrival: 10 units over 10s is 1/s', () => {
    const h = harness([fast]);
    h.read(0, 0);
    h.read(10, 10_000);
    assert.equal(h.alerts.length, 0);
  });

  it('skips duplicate and out-of-order timestamps instead of dividing by zero or going backwards', () => {
    const h = harness([fast]);
    h.read(0, 1000);
    h.read(100, 1000); // same ts
    h.read(100, 500); // older
    assert.equal(h.alerts.length, 0);
    h.read(3, 2000); // 3/s against the reading at 1000
    assert.equal(h.alerts.length, 0);
    assert.equal(h.engine.stats().evalErrors, 0);
  });

  it('the first reading of a key gives no rate', () => {
    const h = harness([{ ...fast, when: 'rate == 0' }]);
    h.read(5, 0);
    assert.equal(h.alerts.length, 0);
    h.read(5, 1000);
    assert.deepEqual(h.states(), ['firing']);
  });
});
