import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { alert, batch, gz, status, summary } from '../test-support/fixtures.ts';
import { ingestPublish } from './ingest.ts';

const OPTS = { maxInflatedBytes: 1 << 20 };
const T = 'edgeflow/v1/gw-1/summaries';

test('a valid batch becomes one spool entry per item, agent kept apart from the item JSON', () => {
  const r = ingestPublish(
    'gw-1',
    'summaries',
    T,
    batch('gw-1', [summary('gw-1', 'd1', 0), summary('gw-1', 'd2', 0, 1)], 'b1'),
    OPTS,
  );
  assert.equal(r.batch, 'b1');
  assert.equal(r.validItems, 2);
  assert.deepEqual(r.deadLetters, []);
  assert.deepEqual(
    r.entries.map((e) => [e.kind, e.device, e.rev]),
    [
      ['summaries', 'd1', 0],
      ['summaries', 'd2', 1],
    ],
  );
  assert.equal(JSON.parse(r.entries[0]!.body.toString()).count, 60);
});

test('gzip payloads (magic bytes) are inflated', () => {
  const r = ingestPublish(
    'gw-1',
    'alerts',
    'edgeflow/v1/gw-1/alerts',
    gz(batch('gw-1', [alert('gw-1', 'd1', 5)])),
    OPTS,
  );
  assert.equal(r.validItems, 1);
  assert.equal(r.entries[0]?.kind, 'alerts');
});

test('a gzip bomb is dead-lettered, not inflated', () => {
  const bomb = gzipSync(Buffer.alloc(8 << 20, 0x20));
  const r = ingestPublish('gw-1', 'summaries', T, bomb, OPTS);
  assert.deepEqual(
    r.deadLetters.map((d) => d.reason),
    ['too_large'],
  );
  assert.equal(r.entries[0]?.kind, 'deadletter');
});

test('invalid items are dead-lettered one by one; the rest of the batch is kept', () => {
  const good = summary('gw-1', 'd1', 0);
  const r = ingestPublish(
    'gw-1',
    'summaries',
    T,
    batch('gw-1', [good, { ...good, count: -1 }, 'nope', { ...good, id: 'x' }]),
    OPTS,
  );
  assert.equal(r.validItems, 1);
  assert.deepEqual(
    r.deadLetters.map((d) => d.reason),
    ['item', 'item', 'item'],
  );
  assert.deepEqual(
    r.entries.map((e) => e.kind),
    ['summaries', 'deadletter', 'deadletter', 'deadletter'],
  );
  assert.match(r.entries[1]!.error!, /^item: .*count/);
  assert.equal(JSON.parse(r.entries[1]!.body.toString()).count, -1, 'the dead letter carries the raw item');
});

test('bad JSON, bad envelope and a foreign agent are dead-lettered whole, with the raw payload', () => {
  const cases: [Buffer, string][] = [
    [Buffer.from('{not json'), 'json'],
    [Buffer.from(JSON.stringify({ v: 2, agent: 'gw-1', batch: 'b', items: [] })), 'envelope'],
    [batch('gw-2', [summary('gw-2', 'd1', 0)]), 'agent_mismatch'],
    [Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'gzip'],
  ];
  for (const [payload, reason] of cases) {
    const r = ingestPublish('gw-1', 'summaries', T, payload, OPTS);
    assert.deepEqual(
      r.deadLetters.map((d) => d.reason),
      [reason],
    );
    assert.equal(r.entries.length, 1);
    assert.equal(r.entries[0]!.kind, 'deadletter');
    assert.deepEqual(r.entries[0]!.body, payload);
    assert.equal(r.entries[0]!.topic, T);
  }
});

test('the same bad payload sent twice has the same dead-letter dedup key', () => {
  const a = ingestPublish('gw-1', 'summaries', T, Buffer.from('garbage'), OPTS);
  const b = ingestPublish('gw-1', 'summaries', T, Buffer.from('garbage'), OPTS);
  assert.ok(a.entries[0]?.dedupKey);
  assert.equal(a.entries[0]?.dedupKey, b.entries[0]?.dedupKey);
});

test('status: validated, agent must match, keyed by its timestamp', () => {
  const r = ingestPublish(
    'gw-1',
    'status',
    'edgeflow/v1/gw-1/status',
    Buffer.from(JSON.stringify(status('gw-1', 1000))),
    OPTS,
  );
  assert.equal(r.validItems, 1);
  assert.equal(r.entries[0]?.itemId, 'status:1000');
  const bad = ingestPublish(
    'gw-1',
    'status',
    'edgeflow/v1/gw-1/status',
    Buffer.from(JSON.stringify(status('gw-9', 1000))),
    OPTS,
  );
  assert.deepEqual(
    bad.deadLetters.map((d) => d.reason),
    ['agent_mismatch'],
  );
});
