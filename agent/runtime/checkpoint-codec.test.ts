import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCheckpointValue, encodeCheckpointValue } from './checkpoint-codec.ts';

test('small values stay plain JSON (old agents can read them)', () => {
  for (const v of ['[]', '{"v":1,"rules":[]}', JSON.stringify({ a: 'x'.repeat(500) })]) {
    assert.equal(encodeCheckpointValue(v), v);
    assert.equal(decodeCheckpointValue(v), v);
  }
});

test('large values are deflated with a version prefix and round-trip exactly', () => {
  const snap = {
    v: 1,
    windows: Array.from({ length: 60 }, (_, i) => ({
      key: ['w1s', `dev-${i % 10}`, `m${i % 3}`],
      start: 1_700_000_000_000 + i * 1000,
      acc: { count: 10 + i, sum: 123.456 * i, min: -1.5, max: 99.25, bins: { 12: 3, 13: 4, 200: 1 } },
      text: 'é ünïcode ✓',
    })),
  };
  const json = JSON.stringify(snap);
  const enc = encodeCheckpointValue(json);
  assert.ok(enc.startsWith('z1:'));
  assert.ok(enc.length < json.length / 2, `${enc.length} vs ${json.length}`);
  assert.equal(decodeCheckpointValue(enc), json);
});

test('existing plain JSON checkpoints (older agents) decode unchanged', () => {
  const old = JSON.stringify({ v: 1, big: 'y'.repeat(5000) });
  assert.equal(decodeCheckpointValue(old), old);
});

test('a damaged compressed value throws (the agent reports a state reset)', () => {
  assert.throws(() => decodeCheckpointValue('z1:AAAA////'));
});
