import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { ProcessingClock } from './processing-clock.ts';

test('processing time excludes paused intervals; monotonicAt maps an earlier base instant without running backwards', () => {
  const base = new FakeClock(0);
  const p = new ProcessingClock(base);
  const m0 = base.monotonic();
  base.advance(100);
  assert.equal(p.monotonic() - p.monotonicAt(m0), 100, 'not paused: the same clock');
  const before = base.monotonic();
  p.pause();
  base.advance(1_000);
  assert.equal(p.monotonicAt(base.monotonic()), p.monotonicAt(before), 'paused: time stands still');
  p.resume();
  base.advance(10);
  const afterResume = p.monotonic();
  // An arrival read before the pause (a frame taken after resume() with an old time) maps to the resume
  // point, never before it: the engines' ticks during the pause saw that time already.
  assert.equal(p.monotonicAt(before), afterResume - 10);
  assert.equal(p.monotonicAt(base.monotonic()), afterResume);
  assert.equal(afterResume - p.monotonicAt(m0 + 100), 10, 'the paused second is not counted');
});
