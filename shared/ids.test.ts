import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { alertId, newBatchId, summaryId } from './ids.ts';

const part = fc.string({ minLength: 1, maxLength: 20 });

test('summaryId is stable: same inputs give the same id (property)', () => {
  fc.assert(
    fc.property(part, part, part, part, fc.integer(), (a, w, d, m, s) => {
      assert.equal(summaryId(a, w, d, m, s), summaryId(a, w, d, m, s));
      assert.match(summaryId(a, w, d, m, s), /^[0-9a-f]{32}$/);
    }),
  );
});

test('summaryId differs when any part differs, including ambiguous concatenations', () => {
  const base = summaryId('gw', 'w', 'dev', 'temp', 0);
  assert.notEqual(base, summaryId('gw', 'w', 'dev', 'temp', 60_000));
  assert.notEqual(base, summaryId('gw', 'w', 'devt', 'emp', 0));
  assert.notEqual(summaryId('a|b', 'c', 'd', 'e', 1), summaryId('a', 'b|c', 'd', 'e', 1));
  fc.assert(
    fc.property(part, part, (d1, d2) => {
      fc.pre(d1 !== d2);
      assert.notEqual(summaryId('gw', 'w', d1, 'm', 0), summaryId('gw', 'w', d2, 'm', 0));
    }),
  );
});

test('summaryId is pinned: ids must not change between releases (downstream de-duplication)', () => {
  // Golden value: changing the id scheme would make every re-sent summary look new to Kafka consumers.
  assert.equal(
    summaryId('gw-001', 'temp-1m', 's1', 'temperature', 1700000040000),
    '93f5d5845bbd31bb85c39787830156a1',
  );
});

test('alert ids differ between firing and resolved of one episode', () => {
  assert.notEqual(alertId('gw', 'r', 'd', 'm', 5, 'firing'), alertId('gw', 'r', 'd', 'm', 5, 'resolved'));
});

test('batch ids are unique', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newBatchId('gw')));
  assert.equal(ids.size, 1000);
});
