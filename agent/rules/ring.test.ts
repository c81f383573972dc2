import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  madOfSorted,
  median,
  medianOfSorted,
  ringInit,
  ringPush,
  sortedInsert,
  sortedRemove,
  sortedReplace,
} from './ring.ts';

describe('ring and sorted-window helpers', () => {
  it('ringPush keeps the last `cap` values and returns the one it overwrote', () => {
    const r = ringInit();
    assert.equal(ringPush(r, 3, 1), undefined);
    ringPush(r, 3, 2);
    ringPush(r, 3, 3);
    assert.equal(ringPush(r, 3, 4), 1);
    assert.deepEqual([...r.buf].sort(), [2, 3, 4]);
  });

  it('median and MAD from the sorted window equal the naive sort-based ones', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 40 }), (xs) => {
        const sorted: number[] = [];
        for (const x of xs) sortedInsert(sorted, x);
        const m = median(xs);
        assert.equal(medianOfSorted(sorted), m);
        assert.equal(madOfSorted(sorted, m), median(xs.map((x) => Math.abs(x - m))));
      }),
    );
  });

  it('sortedRemove removes one occurrence and keeps order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        (xs, i) => {
          const sorted: number[] = [];
          for (const x of xs) sortedInsert(sorted, x);
          const victim = xs[i % xs.length]!;
          sortedRemove(sorted, victim);
          const expect = [...xs];
          expect.splice(expect.indexOf(victim), 1);
          assert.deepEqual(
            sorted,
            expect.sort((a, b) => a - b),
          );
        },
      ),
    );
  });

  it('sortedReplace leaves the array sortedRemove then sortedInsert leave, element for element', () => {
    const value = fc.oneof(
      fc.constantFrom(0, -0, 1, -1, 2.5),
      fc.integer({ min: -4, max: 4 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    );
    fc.assert(
      fc.property(fc.array(value, { maxLength: 40 }), value, value, fc.nat(), (xs, other, x, pick) => {
        const sorted: number[] = [];
        for (const v of xs) sortedInsert(sorted, v);
        const old = pick % 2 === 0 && xs.length > 0 ? xs[(pick >> 1) % xs.length]! : other;
        const expect = [...sorted];
        sortedRemove(expect, old);
        sortedInsert(expect, x);
        sortedReplace(sorted, old, x);
        assert.equal(sorted.length, expect.length);
        for (let i = 0; i < expect.length; i++) assert.ok(Object.is(sorted[i], expect[i]), `at ${i}`);
      }),
      { numRuns: 2000 },
    );
  });
});
