import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceWatermark } from './watermark.ts';

test('watermark = max ts - maxOutOfOrder, never decreasing', () => {
  const w = new DeviceWatermark(0);
  assert.equal(w.wm, Number.NEGATIVE_INFINITY);
  assert.equal(w.observe(10_000, 0, 2000), true);
  assert.equal(w.wm, 8000);
  assert.equal(w.observe(9000, 1, 2000), false);
  assert.equal(w.wm, 8000);
  w.observe(12_000, 2, 2000);
  assert.equal(w.wm, 10_000);
});

test('idle: after idleTimeout of monotonic silence the watermark follows processing time', () => {
  const w = new DeviceWatermark(0);
  w.observe(10_000, 100, 2000);
  assert.equal(w.advanceIdle(100 + 29_999, 30_000, 2000), false);
  assert.equal(w.wm, 8000);
  assert.equal(w.advanceIdle(100 + 30_000, 30_000, 2000), true);
  assert.equal(w.wm, 10_000 - 2000 + 30_000);
  w.advanceIdle(100 + 40_000, 30_000, 2000);
  assert.equal(w.wm, 48_000);
  // a reading resets silence; a reading older than the advanced watermark does not move it back
  w.observe(11_000, 100 + 40_001, 2000);
  assert.equal(w.wm, 48_000);
  assert.equal(w.advanceIdle(100 + 40_002, 30_000, 2000), false);
});

test('a device that never sent anything is never advanced', () => {
  const w = new DeviceWatermark(0);
  assert.equal(w.advanceIdle(1e9, 1, 0), false);
});

test('JSON round trip keeps silence relative to the new monotonic origin', () => {
  const w = new DeviceWatermark(0);
  w.observe(5000, 1000, 0);
  const j = w.toJSON(3000);
  assert.deepEqual(j, { wm: 5000, maxTs: 5000, silent: 2000 });
  const r = DeviceWatermark.fromJSON(JSON.parse(JSON.stringify(j)), 50);
  assert.equal(r.silentFor(50), 2000);
  assert.equal(r.wm, 5000);
  const empty = DeviceWatermark.fromJSON(JSON.parse(JSON.stringify(new DeviceWatermark(0).toJSON(0))), 0);
  assert.equal(empty.wm, Number.NEGATIVE_INFINITY);
});
