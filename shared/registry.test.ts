import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { discriminatedUnionOf, lazily, Registry } from './registry.ts';

/** A kind whose schema counts how often it was built (built-in kinds build theirs with lazily()). */
function countingKind(type: string) {
  const kind = {
    type,
    built: 0,
    schema: lazily(() => {
      kind.built++;
      return z.strictObject({ type: z.literal(type), n: z.number() });
    }),
  };
  return kind;
}

test("the union builds a kind's schema only when an entry of that kind is parsed (issue 14, start)", () => {
  const a = countingKind('a');
  const b = countingKind('b');
  const descriptors = [a, b].map((k) => ({
    type: k.type,
    get schema() {
      return k.schema();
    },
  }));
  const union = discriminatedUnionOf<unknown, unknown>('type', new Registry('thing', descriptors));
  assert.deepEqual(union.parse({ type: 'a', n: 1 }), { type: 'a', n: 1 });
  assert.equal(a.built, 1);
  assert.equal(b.built, 0, "b's schema is not built for an entry of kind a");
  // The entry goes through the kind's own schema: its messages, at its paths.
  const bad = union.safeParse({ type: 'a', n: 'x', extra: 1 });
  assert.equal(bad.success, false);
  assert.deepEqual(
    bad.error?.issues.map((i) => [i.path.join('.'), i.code]),
    [
      ['n', 'invalid_type'],
      ['', 'unrecognized_keys'],
    ],
  );
  const unknown = union.safeParse({ type: 'c' });
  assert.deepEqual(
    unknown.error?.issues.map((i) => [i.path.join('.'), i.message]),
    [['type', 'expected type to be one of a | b']],
  );
  assert.equal(b.built, 0);
  assert.equal(a.built, 1, 'built once');
});
