import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CountWindowAssigner } from './count.ts';
import { HoppingAssigner } from './hopping.ts';
import { overlaps, SessionAssigner } from './session.ts';
import { TumblingAssigner } from './tumbling.ts';

test('tumbling: aligned to the epoch, end exclusive (a reading exactly at the end opens the next window)', () => {
  const a = new TumblingAssigner(60_000);
  assert.deepEqual(a.assign(1_700_000_040_000), [{ start: 1_700_000_040_000, end: 1_700_000_100_000 }]);
  assert.deepEqual(a.assign(1_700_000_099_999), [{ start: 1_700_000_040_000, end: 1_700_000_100_000 }]);
  assert.deepEqual(a.assign(1_700_000_100_000), [{ start: 1_700_000_100_000, end: 1_700_000_160_000 }]);
  assert.deepEqual(a.assign(0), [{ start: 0, end: 60_000 }]);
  // before 1970 still lands on multiples of size (Math.floor, not truncation)
  assert.deepEqual(a.assign(-1), [{ start: -60_000, end: 0 }]);
});

test('hopping: every window [k*slide, k*slide+size) containing ts, ascending', () => {
  const a = new HoppingAssigner(1000, 250);
  assert.deepEqual(
    a.assign(1000),
    [250, 500, 750, 1000].map((s) => ({ start: s, end: s + 1000 })),
  );
  assert.deepEqual(
    a.assign(1249),
    [250, 500, 750, 1000].map((s) => ({ start: s, end: s + 1000 })),
  );
  assert.deepEqual(
    a.assign(1250),
    [500, 750, 1000, 1250].map((s) => ({ start: s, end: s + 1000 })),
  );
  // size not a multiple of slide: 3 or 4 windows
  const b = new HoppingAssigner(1000, 300);
  for (let ts = 0; ts < 3000; ts += 37) {
    const ws = b.assign(ts);
    assert.ok(ws.length === 3 || ws.length === 4);
    for (const w of ws) assert.ok(w.start <= ts && ts < w.end && w.start % 300 === 0);
  }
  assert.throws(() => new HoppingAssigner(1000, 1500), RangeError);
  assert.throws(() => new HoppingAssigner(1000, 0), RangeError);
});

test('session: proto-window [ts, ts+gap); overlap is strict, so a gap of exactly `gap` splits sessions', () => {
  const a = new SessionAssigner(500);
  assert.deepEqual(a.assign(1000), [{ start: 1000, end: 1500 }]);
  assert.equal(overlaps({ start: 1000, end: 1500 }, { start: 1499, end: 1999 }), true);
  assert.equal(overlaps({ start: 1000, end: 1500 }, { start: 1500, end: 2000 }), false);
  assert.equal(overlaps({ start: 1000, end: 1500 }, { start: 600, end: 1100 }), true);
  assert.throws(() => new SessionAssigner(0), RangeError);
});

test('count: positive integer size', () => {
  assert.equal(new CountWindowAssigner(3).count, 3);
  assert.throws(() => new CountWindowAssigner(0), RangeError);
  assert.throws(() => new CountWindowAssigner(1.5), RangeError);
});
