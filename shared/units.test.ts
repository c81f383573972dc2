import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration, parseSize } from './units.ts';

test('parseDuration reads the units of SPEC.md section 2', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration(250), 250);
});

test('parseDuration rejects what is not a duration', () => {
  for (const bad of ['', '5', '5 minutes', '-1s', 's', '1y', '1S']) {
    assert.throws(() => parseDuration(bad), RangeError, bad);
  }
  assert.throws(() => parseDuration(-1), RangeError);
});

test('parseSize is binary (1KB = 1024 bytes)', () => {
  assert.equal(parseSize('64KB'), 65_536);
  assert.equal(parseSize('512MB'), 512 * 1024 ** 2);
  assert.equal(parseSize('2GB'), 2 * 1024 ** 3);
  assert.equal(parseSize('10B'), 10);
  assert.throws(() => parseSize('12 parsecs'), RangeError);
});

test('formatDuration and parseDuration round-trip (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10 ** 10 }), (ms) => {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }),
  );
});

test('parseDuration never throws anything but RangeError on arbitrary strings (property)', () => {
  fc.assert(
    fc.property(fc.string(), (s) => {
      try {
        const v = parseDuration(s);
        assert.ok(Number.isFinite(v) && v >= 0);
      } catch (e) {
        assert.ok(e instanceof RangeError);
      }
    }),
  );
});
