import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { scanJsonShape } from './json-shape.ts';

const LIMITS = { maxDepth: 8, maxItems: 5, maxValues: 1000 };
const scan = (s: string, l = LIMITS) => scanJsonShape(Buffer.from(s), l);

test('counts depth, the items of arrays under the top level, and values; strings are skipped', () => {
  assert.deepEqual(scan('{"v":1,"items":[{"a":[1,2,3,4,5,6,7]},{},"[[[[,,,,"]}'), {
    ok: true,
    depth: 4,
    items: 3,
    values: 14,
  });
  assert.deepEqual(scan('[]'), { ok: true, depth: 1, items: 0, values: 1 });
  assert.deepEqual(scan('[[1,2],[3]]'), { ok: true, depth: 2, items: 2, values: 5 });
  assert.deepEqual(scan('"a\\"[[["'), { ok: true, depth: 0, items: 0, values: 0 });
});

test('stops at the first limit passed', () => {
  assert.deepEqual(scan(`{"items":[${'1,'.repeat(5)}1]}`).ok, false);
  const many = scan(`{"items":[${'1,'.repeat(5)}1]}`);
  assert.ok(!many.ok && many.reason === 'too_many_items');
  const top = scan(`[${'0,'.repeat(10)}0]`);
  assert.ok(!top.ok && top.reason === 'too_many_items', 'a top-level array counts too');
  const deep = scan(`{"items":[{"t":${'['.repeat(20)}${']'.repeat(20)}}]}`);
  assert.ok(!deep.ok && deep.reason === 'too_deep');
  const values = scan(`{"items":[{"t":[${'0,'.repeat(2000)}0]}]}`);
  assert.ok(!values.ok && values.reason === 'too_many_values', 'a big array deeper down');
});

test('agrees with JSON.parse on random JSON (depth and top-level item count)', () => {
  const depthOf = (v: unknown): number =>
    v !== null && typeof v === 'object'
      ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depthOf))
      : 0;
  fc.assert(
    fc.property(fc.array(fc.jsonValue({ maxDepth: 5 }), { maxLength: 20 }), (items) => {
      const text = JSON.stringify({ v: 1, items });
      const v = scanJsonShape(Buffer.from(text), { maxDepth: 64, maxItems: 1e6, maxValues: 1e9 });
      assert.ok(v.ok);
      assert.equal(v.depth, depthOf({ v: 1, items }));
      assert.ok(v.items >= items.length, 'at least the batch items (nested depth-2 arrays may count more)');
    }),
  );
});
