import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  checkpointDigest,
  decodeCheckpointValue,
  encodeCheckpointValue,
  encodeIfChanged,
} from './checkpoint-codec.ts';

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

test('encodeIfChanged: the digest of the UTF-8 bytes, the stored form only when the digest differs', () => {
  const values = [
    '[]',
    JSON.stringify({ a: 'x'.repeat(100) }), // hashed, stored plain
    JSON.stringify({ t: 'é ünïcode ✓ '.repeat(2000) }), // deflated, not ASCII
    JSON.stringify({ big: 'z'.repeat(1_200_000) }), // larger than the reused scratch buffer
  ];
  for (const v of values) {
    const [dg, stored] = encodeIfChanged(v, undefined);
    assert.equal(dg, checkpointDigest(v));
    const expected = v.length <= 64 ? `=${v}` : `#${createHash('sha1').update(v, 'utf8').digest('base64')}`;
    assert.equal(dg, expected);
    assert.equal(stored, encodeCheckpointValue(v));
    assert.equal(decodeCheckpointValue(stored as string), v);
    assert.deepEqual(encodeIfChanged(v, dg), [dg, undefined]);
  }
});

test('deflated values are the same bytes as a default-chunked deflateRaw (older agents read them)', () => {
  const json = JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ i, s: `v${i * 7919}` })));
  const enc = encodeCheckpointValue(json);
  assert.equal(enc, `z1:${deflateRawSync(Buffer.from(json)).toString('base64')}`);
  assert.equal(inflateRawSync(Buffer.from(enc.slice(3), 'base64')).toString(), json);
});
