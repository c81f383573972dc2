import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { alert, batch, gz, status, summary } from '../test-support/fixtures.ts';
import {
  deeplyNestedBatch,
  hugeArray,
  invalidItemsBatch,
  statusWithCounters,
} from '../test-support/hostile.ts';
import { ingestPublish, MAX_INVALID_ITEMS } from './ingest.ts';

const OPTS = { maxInflatedBytes: 1 << 20, maxItems: 10_000 };
const T = 'edgeflow/v1/gw-1/summaries';

test('a valid batch becomes one spool entry per item, agent kept apart from the item JSON', async () => {
  const r = await ingestPublish(
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

test('gzip payloads (magic bytes) are inflated', async () => {
  const r = await ingestPublish(
    'gw-1',
    'alerts',
    'edgeflow/v1/gw-1/alerts',
    gz(batch('gw-1', [alert('gw-1', 'd1', 5)])),
    OPTS,
  );
  assert.equal(r.validItems, 1);
  assert.equal(r.entries[0]?.kind, 'alerts');
});

test('a gzip bomb is dead-lettered, not inflated', async () => {
  const bomb = gzipSync(Buffer.alloc(8 << 20, 0x20));
  const r = await ingestPublish('gw-1', 'summaries', T, bomb, OPTS);
  assert.deepEqual(
    r.deadLetters.map((d) => d.reason),
    ['too_large'],
  );
  assert.equal(r.entries[0]?.kind, 'deadletter');
});

test('invalid items are dead-lettered one by one; the rest of the batch is kept', async () => {
  const good = summary('gw-1', 'd1', 0);
  const r = await ingestPublish(
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

test('bad JSON, bad envelope and a foreign agent are dead-lettered whole, with the raw payload', async () => {
  const cases: [Buffer, string][] = [
    [Buffer.from('{not json'), 'json'],
    [Buffer.from(JSON.stringify({ v: 2, agent: 'gw-1', batch: 'b', items: [] })), 'envelope'],
    [batch('gw-2', [summary('gw-2', 'd1', 0)]), 'agent_mismatch'],
    [Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'gzip'],
  ];
  for (const [payload, reason] of cases) {
    const r = await ingestPublish('gw-1', 'summaries', T, payload, OPTS);
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

test('the same bad payload sent twice has the same dead-letter dedup key', async () => {
  const a = await ingestPublish('gw-1', 'summaries', T, Buffer.from('garbage'), OPTS);
  const b = await ingestPublish('gw-1', 'summaries', T, Buffer.from('garbage'), OPTS);
  assert.ok(a.entries[0]?.dedupKey);
  assert.equal(a.entries[0]?.dedupKey, b.entries[0]?.dedupKey);
});

test('status: validated, agent must match, keyed by its timestamp', async () => {
  const r = await ingestPublish(
    'gw-1',
    'status',
    'edgeflow/v1/gw-1/status',
    Buffer.from(JSON.stringify(status('gw-1', 1000))),
    OPTS,
  );
  assert.equal(r.validItems, 1);
  assert.equal(r.entries[0]?.itemId, 'status:1000');
  const bad = await ingestPublish(
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

describe('hostile payloads (issue 12, items 9, 11, 12): bounded work, one dead letter with a reason', () => {
  const LIMITS = { maxInflatedBytes: 4 << 20, maxItems: 10_000 };
  const reasons = (r: Awaited<ReturnType<typeof ingestPublish>>) => r.deadLetters.map((d) => d.reason);

  test('100k invalid items in a small gzip: refused on the item count before parsing', async () => {
    const p = invalidItemsBatch('gw-1');
    const r = await ingestPublish('gw-1', 'summaries', T, p, { ...LIMITS, maxInflatedBytes: 64 << 20 });
    assert.deepEqual(reasons(r), ['too_many_items']);
    assert.equal(r.entries.length, 1);
    assert.deepEqual(r.entries[0]!.body, p, 'the dead letter carries the raw payload');
  });

  test('a 30M-element array in 58 KB of gzip: refused at maxBatchBytes, or on its values, never parsed', async () => {
    const p = hugeArray();
    assert.deepEqual(reasons(await ingestPublish('gw-1', 'summaries', T, p, LIMITS)), ['too_large']);
    const big = await ingestPublish('gw-1', 'summaries', T, p, { ...LIMITS, maxInflatedBytes: 64 << 20 });
    assert.deepEqual(reasons(big), ['too_many_items']);
  });

  test('more than 100 invalid items: the whole payload is one dead letter instead of one per item', async () => {
    const good = summary('gw-1', 'd1', 0);
    const items = [good, ...Array.from({ length: MAX_INVALID_ITEMS + 1 }, () => ({ ...good, count: -1 }))];
    const p = batch('gw-1', items);
    const r = await ingestPublish('gw-1', 'summaries', T, p, LIMITS);
    assert.deepEqual(reasons(r), ['too_many_invalid']);
    assert.equal(r.validItems, 0);
    assert.deepEqual(r.entries[0]!.body, p);
  });

  test('an item nested 10,000 deep is dead-lettered (too_deep), not a spool error', async () => {
    const r = await ingestPublish('gw-1', 'summaries', T, deeplyNestedBatch('gw-1'), LIMITS);
    assert.deepEqual(reasons(r), ['too_deep']);
    assert.match(r.deadLetters[0]!.detail, /deeper than 32/);
  });

  test('status counters: at most 256, names up to 128 characters, the rest counted as dropped', async () => {
    const counters: Record<string, number> = { ['x'.repeat(129)]: 1 };
    for (let i = 0; i < 300; i++) counters[`c${i}`] = i;
    const p = Buffer.from(JSON.stringify({ ...status('gw-1', 5000), counters }));
    const r = await ingestPublish('gw-1', 'status', 'edgeflow/v1/gw-1/status', p, LIMITS);
    assert.deepEqual(r.deadLetters, []);
    assert.equal(r.countersDropped, 45);
    const stored = JSON.parse(r.entries[0]!.body.toString()).counters;
    assert.equal(Object.keys(stored).length, 256);
    assert.equal(stored.c255, 255);
    // 40k counters: over the status' value budget, dead-lettered before validation.
    const huge = await ingestPublish(
      'gw-1',
      'status',
      'edgeflow/v1/gw-1/status',
      statusWithCounters('gw-1', 6000),
      LIMITS,
    );
    assert.deepEqual(reasons(huge), ['too_many_values']);
  });
});
