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
});
