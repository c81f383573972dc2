import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { harness, T0 } from './testkit.ts';

const silent = { name: 'silent', kind: 'missing', after: '60s', severity: 'warning' } as const;

describe('missing', () => {
  it('fires when a seen key stays silent for `after` on the monotonic clock (exactly `after` fires)', () => {
    const h = harness([silent]);
    h.read(1, 0);
    h.clock.advance(59_999);
    h.engine.tick();
    assert.equal(h.alerts.length, 0);
    h.clock.advance(1);
    h.engine.tick();
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.value, null);
    assert.equal(h.alerts[0]!.ts, T0 + 60_000, 'last event ts + after');
    h.clock.advance(120_000);
    h.engine.tick();
    assert.equal(h.alerts.length, 1, 'not repeated while firing');
  });

  it('resolves when data returns, with the returning reading’s ts', () => {
    const h = harness([silent]);
    h.read(1, 0);
    h.clock.advance(90_000);
    h.engine.tick();
    h.read(2, 90_000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    assert.equal(h.alerts[1]!.ts, T0 + 90_000);
    assert.equal(h.alerts[1]!.value, 2);
    h.clock.advance(30_000);
    h.engine.tick();
    assert.equal(h.alerts.length, 2, 'the timer restarted with the new reading');
  });

  it('does not fire while data keeps coming, nor for keys never seen', () => {
    const h = harness([silent]);
    for (let i = 0; i < 10; i++) {
      h.read(i, i * 30_000);
      h.clock.advance(30_000);
      h.engine.tick();
    }
    assert.equal(h.alerts.length, 0);
    const h2 = harness([silent]);
    h2.clock.advance(3_600_000);
    h2.engine.tick();
    assert.equal(h2.alerts.length, 0);
  });

  it('uses processing time: a wall-clock jump does not fire it, and an unsynced clock does not stamp it', () => {
    const clock = new FakeClock(Date.UTC(1970, 0, 2)); // gateway without NTP
    const h = harness([silent], clock);
    h.read(1, 0); // the sensor's own timestamp: 2024
    clock.setWall(Date.UTC(2030, 0, 1));
    h.engine.tick();
    assert.equal(h.alerts.length, 0);
    clock.advance(60_000);
    h.engine.tick();
    assert.equal(h.alerts[0]!.ts, T0 + 60_000);
  });
});
