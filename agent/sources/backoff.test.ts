import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { Backoff, RetryTimer } from './backoff.ts';

describe('Backoff', () => {
  it('grows exponentially from min to max with full jitter above the floor', () => {
    const hi = new Backoff({ minMs: 500, maxMs: 30_000, random: () => 0.999999 });
    assert.deepEqual(
      Array.from({ length: 9 }, () => hi.next()),
      [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
    );
    const lo = new Backoff({ minMs: 500, maxMs: 30_000, random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 4 }, () => lo.next()),
      [500, 500, 500, 500],
    );
  });
  it('reset() starts over', () => {
    const b = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0.999999 });
    b.next();
    b.next();
    b.reset();
    assert.equal(b.next(), 100);
  });
  it('rejects nonsense bounds', () => {
    assert.throws(() => new Backoff({ minMs: 0 }), RangeError);
    assert.throws(() => new Backoff({ minMs: 10, maxMs: 5 }), RangeError);
  });
});

describe('RetryTimer', () => {
  it('arms one timer at a time on the injected clock; cancel() disarms', () => {
    const clock = new FakeClock();
    const r = new RetryTimer(clock, new Backoff({ minMs: 100, maxMs: 1000, random: () => 0.999999 }));
    let fired = 0;
    assert.equal(
      r.schedule(() => fired++),
      100,
    );
    assert.equal(
      r.schedule(() => fired++),
      null,
      'already pending',
    );
    clock.advance(99);
    assert.equal(fired, 0);
    clock.advance(1);
    assert.equal(fired, 1);
    assert.equal(
      r.schedule(() => fired++),
      200,
    );
    r.cancel();
    clock.advance(1000);
    assert.equal(fired, 1);
  });
});
