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

  it('madOfSorted gives what the merge walk it replaced gave, for any m', () => {
    // The O(n) walk of the deviations left and right of m (before branch `rules`), kept as the oracle.
    const walk = (a: readonly number[], m: number): number => {
      const n = a.length;
      let r = 0;
      while (r < n && a[r]! < m) r++;
      let l = r - 1;
      const k = (n - 1) >> 1;
      const steps = n % 2 === 1 ? k + 1 : k + 2;
      let lower = 0;
      let d = 0;
      for (let i = 0; i < steps; i++) {
        const dl = l >= 0 ? m - a[l]! : Number.POSITIVE_INFINITY;
        const dr = r < n ? a[r]! - m : Number.POSITIVE_INFINITY;
        if (dl <= dr) {
          l--;
          d = dl;
        } else {
          r++;
          d = dr;
        }
        if (i === k) lower = d;
      }
      return n % 2 === 1 ? lower : (lower + d) / 2;
    };
    const value = fc.oneof(
      fc.integer({ min: -6, max: 6 }),
      fc.constantFrom(0, -0, 0.1, 0.2, 0.3),
      fc.double({ noNaN: true, min: -1e6, max: 1e6 }),
    );
    fc.assert(
      fc.property(fc.array(value, { maxLength: 70 }), value, fc.boolean(), (xs, other, atMedian) => {
        const sorted: number[] = [];
        for (const x of xs) sortedInsert(sorted, x);
        const m = atMedian && xs.length > 0 ? medianOfSorted(sorted) : other;
        // === : a zero deviation may come out as -0 from one and 0 from the other (see madOfSorted)
        assert.ok(madOfSorted(sorted, m) === walk(sorted, m), `${sorted} m=${m}`);
      }),
      { numRuns: 5000 },
    );
  });
});
