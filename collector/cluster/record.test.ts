import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ingestPublish } from '../ingest/ingest.ts';
import { alert, batch, summary } from '../test-support/fixtures.ts';
import { outputRecord } from './output.ts';
import {
  decodeIngestRecord,
  dedupKeyOf,
  encodeIngestRecords,
  IngestRecordError,
  MAX_RECORD_BYTES,
} from './record.ts';

const OPTS = { maxInflatedBytes: 1 << 20, maxItems: 10_000 };
const TOPICS = { summaries: 's', alerts: 'a', status: 'st', late: 'l', deadletter: 'dl' };

test('ingest record round trip: the decoded items are the spool entries, bytes and dedup keys included', async () => {
  const r = await ingestPublish(
    'gw-1',
    'summaries',
    'edgeflow/v1/gw-1/summaries',
    batch('gw-1', [summary('gw-1', 'd1', 0), summary('gw-1', 'd2', 0, 1), { bad: true }], 'b1'),
    OPTS,
  );
  assert.equal(r.entries.length, 3); // two items and one dead letter
  const values = encodeIngestRecords('gw-1', 'node-a', r.entries);
  assert.equal(values.length, 1);
  const d = decodeIngestRecord(values[0]!, 1234);
  assert.equal(d.agent, 'gw-1');
  assert.equal(d.items.length, 3);
  d.items.forEach((it, i) => {
    const e = r.entries[i]!;
    assert.equal(it.item.kind, e.kind);
    assert.equal(it.item.itemId, e.itemId);
    assert.equal(it.item.rev, e.rev);
    assert.equal(it.item.device, e.device);
    assert.ok(it.item.body.equals(e.body), `body ${i} byte-identical`);
    assert.equal(it.dedupKey, dedupKeyOf(e));
    assert.equal(it.item.receivedAt, 1234);
  });
  assert.equal(d.items[2]!.item.kind, 'deadletter');
  assert.match(d.items[2]!.item.error ?? '', /^item: /);
});

test('output records keep the single-node layout: topic per kind, key agent/device, edgeflow-id header', async () => {
  const s = summary('gw-1', 'press-1', 0);
  const r = await ingestPublish(
    'gw-1',
    'summaries',
    'edgeflow/v1/gw-1/summaries',
    batch('gw-1', [s], 'b1'),
    OPTS,
  );
  const [it] = decodeIngestRecord(encodeIngestRecords('gw-1', 'n', r.entries)[0]!, 0).items;
  const out = outputRecord(it!.item, TOPICS);
  assert.equal(out.topic, 's');
  assert.equal(out.key, 'gw-1/press-1');
  assert.deepEqual(out.headers, { 'edgeflow-id': s.id });
  assert.deepEqual(JSON.parse(String(out.value)), { ...s, agent: 'gw-1' });

  const a = alert('gw-1', 'press-1', 1_700_000_000_000);
  const ra = await ingestPublish('gw-1', 'alerts', 'edgeflow/v1/gw-1/alerts', batch('gw-1', [a], 'b2'), OPTS);
  const [ia] = decodeIngestRecord(encodeIngestRecords('gw-1', 'n', ra.entries)[0]!, 0).items;
  assert.equal(outputRecord(ia!.item, TOPICS).topic, 'a');

  const bad = await ingestPublish(
    'gw-1',
    'summaries',
    'edgeflow/v1/gw-1/summaries',
    Buffer.from('{nope'),
    OPTS,
  );
  const [dl] = decodeIngestRecord(encodeIngestRecords('gw-1', 'n', bad.entries)[0]!, 0).items;
  const od = outputRecord(dl!.item, TOPICS);
  assert.equal(od.topic, 'dl');
  assert.equal(od.key, 'gw-1');
  assert.ok(Buffer.isBuffer(od.value) && od.value.equals(Buffer.from('{nope')), 'raw payload kept');
  assert.match(od.headers['edgeflow-error'] ?? '', /^json: /);
  assert.equal(od.headers['edgeflow-agent'], 'gw-1');
});

test('a batch larger than one record is split; every item survives, in order', async () => {
  const items = Array.from({ length: 4000 }, (_, i) => summary('gw-1', `d${i % 50}`, i * 1000));
  const r = await ingestPublish(
    'gw-1',
    'summaries',
    'edgeflow/v1/gw-1/summaries',
    batch('gw-1', items, 'b'),
    {
      maxInflatedBytes: 64 << 20,
      maxItems: 10_000,
    },
  );
  const values = encodeIngestRecords('gw-1', 'n', r.entries);
  assert.ok(values.length > 1, `split into ${values.length}`);
  for (const v of values) assert.ok(v.length <= MAX_RECORD_BYTES);
  const ids = values.flatMap((v) => decodeIngestRecord(v, 0).items.map((x) => x.item.itemId));
  assert.deepEqual(
    ids,
    r.entries.map((e) => e.itemId),
  );
});

test('an unreadable record throws IngestRecordError (the forwarder dead-letters it)', () => {
  for (const v of [
    '{',
    '[]',
    '{"v":2,"agent":"a","entries":[]}',
    '{"v":1,"agent":"a","entries":[{"kind":"x"}]}',
  ]) {
    assert.throws(() => decodeIngestRecord(Buffer.from(v), 0), IngestRecordError, v);
  }
});
