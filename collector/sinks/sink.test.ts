import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { SpoolItem, SpoolKind } from '../spool/spool.ts';
import { itemRecord, itemRecordBytes, itemRecordJson } from './sink.ts';

function item(body: string, kind: SpoolKind = 'summaries', agent = 'gw-1'): SpoolItem {
  return {
    seq: 1,
    kind,
    agent,
    itemId: 'x',
    rev: 0,
    device: 'd',
    body: Buffer.from(body),
    error: null,
    topic: null,
    receivedAt: 0,
  };
}

const same = (it: SpoolItem) => {
  assert.equal(itemRecordJson(it), JSON.stringify(itemRecord(it)));
  assert.deepEqual(itemRecordBytes(it), Buffer.from(JSON.stringify(itemRecord(it))));
};

test('itemRecordJson: the same bytes as JSON.stringify(itemRecord()) for the bodies ingest writes', () => {
  const summary = {
    id: 'abcdefgh12',
    rev: 1,
    device: 'press-7',
    metric: 'temperature',
    window: { name: 'w', type: 'tumbling', start: 1, end: 2 },
    count: 3,
    min: -0.5,
    max: null,
    p95: 1e21,
    late: 0,
    tags: { '10': 'a', '2': 'b', z: 'ünïcødé \u2028 "q"' },
  };
  same(item(JSON.stringify(summary)));
  same(item(JSON.stringify(summary), 'alerts', 'gw.with-odd_chars'));
  same(item('{}'));
  // Parse path: mentions "agent" (here inside a string), a status, not an object.
  same(item(JSON.stringify({ id: 'a', message: 'the "agent" is down' }), 'alerts'));
  same(item(JSON.stringify({ agent: 'gw-1', ts: 1 }), 'status'));
  same(item('[1,2]'));
  assert.equal(itemRecordJson(item('{"a":1}', 'summaries', 'gw-9')), '{"a":1,"agent":"gw-9"}');
});

test('itemRecordJson: byte-equal on random JSON objects (as JSON.stringify writes them)', () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.string(), fc.jsonValue()),
      fc.constantFrom('gw-1', 'a.b_c-9'),
      (obj, agent) => {
        same(item(JSON.stringify(obj), 'summaries', agent));
      },
    ),
    { numRuns: 500 },
  );
});
