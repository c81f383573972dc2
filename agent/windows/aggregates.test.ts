import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AggregateName } from '../../shared/model.ts';
import { Accumulator, EXACT_MAX } from './aggregates.ts';

// Realistic magnitudes: below 1e-6 is treated as 0 by this generator so one window never spans more
// than the 2048-bin cap of the sketch (~18 decades); see README.md "Quantiles" for the extreme-range caveat.
const value = (max: number) =>
  fc.double({ min: -max, max, noNaN: true }).map((v) => (Math.abs(v) < 1e-6 ? 0 : v));

const ALL = new Set<AggregateName>([
  'count',
  'min',
  'max',
  'mean',
  'sum',
  'stddev',
  'first',
  'last',
  'p50',
  'p95',
]);

function acc(values: number[], ts?: number[]): Accumulator {
  const a = new Accumulator(true);
  values.forEach((v, i) => {
    a.add(v, ts?.[i] ?? i, i);
  });
  return a;
}

function exactQuantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))]!;
}

test('only the asked aggregates are computed; count always', () => {
  const a = new Accumulator(false);
  a.add(3, 0, 0);
  assert.deepEqual(a.result(new Set<AggregateName>(['max'])), { count: 1, max: 3 });
  assert.deepEqual(a.result(new Set<AggregateName>([])), { count: 1 });
  assert.equal(new Accumulator(false).quantile(0.5), null);
});

test('stddev is the population standard deviation and stable around 1e9 with tiny variance', () => {
  assert.equal(acc([2, 4, 4, 4, 5, 5, 7, 9]).result(ALL).stddev, 2);
  assert.equal(acc([42]).result(ALL).stddev, 0);
  // naive sum-of-squares loses everything here: 1e18-sized squares, variance 0.0125
  const values = [1e9 + 0.1, 1e9 + 0.2, 1e9 + 0.3, 1e9 + 0.25, 1e9 + 0.15];
  const mean = values.reduce((s, v) => s + (v - 1e9), 0) / values.length + 1e9;
  const exact = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  const r = acc(values).result(ALL);
  assert.ok(Math.abs(r.stddev! - exact) / exact < 1e-6, `${r.stddev} vs ${exact}`);
  const naive = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length - mean * mean);
  assert.ok(!(Math.abs(naive - exact) / exact < 1e-6), 'the test data defeats the naive formula');
  // 100k readings around 1e9
  const many = Array.from({ length: 100_000 }, (_, i) => 1e9 + (i % 10) * 0.001);
  // exact reference: v - 1e9 is exact for these doubles (Sterbenz), so a two-pass on offsets is exact enough
  const offs = many.map((v) => v - 1e9);
  const om = offs.reduce((s, v) => s + v, 0) / offs.length;
  const ref = Math.sqrt(offs.reduce((s, v) => s + (v - om) ** 2, 0) / offs.length);
  const m = acc(many).result(ALL);
  assert.ok(Math.abs(m.stddev! - ref) / ref < 1e-6, `${m.stddev} vs ${ref}`);
});

test('sum is compensated: 1e16 + 1 - 1e16 kept exactly', () => {
  assert.equal(acc([1e16, 1, -1e16]).result(ALL).sum, 1);
  assert.equal(acc([0.1, 0.2, 0.3]).result(ALL).sum, 0.6);
});

test('first/last by event time, ties by arrival order', () => {
  const r = acc([10, 20, 30, 40, 50], [5, 1, 1, 9, 9]).result(ALL);
  assert.equal(r.first, 20); // ts 1, arrived before the other ts-1 reading
  assert.equal(r.last, 50); // ts 9, arrived after the other ts-9 reading
});

test('p50/p95 within 1% of the exact lower nearest-rank quantile (positive, negative, zero, mixed)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(value(1e6), fc.constant(0), fc.integer({ min: -3, max: 3 })), {
        minLength: 1,
        maxLength: 400,
      }),
      (values) => {
        const a = acc(values);
        for (const q of [0.5, 0.95]) {
          const exact = exactQuantile(values, q);
          const got = a.quantile(q)!;
          assert.ok(
            Math.abs(got - exact) <= 0.01 * (1 + 1e-9) * Math.abs(exact),
            `q${q}: ${got} vs ${exact}`,
          );
        }
      },
    ),
    { numRuns: 300 },
  );
  const same = acc([21.5, 21.5, 21.5]).result(ALL);
  assert.equal(same.p50, 21.5, 'clamped to [min, max]');
});

test('merge keeps negative values (the library merge drops them) and matches one accumulator', () => {
  fc.assert(
    fc.property(
      fc.array(value(1e3), { minLength: 1, maxLength: 100 }),
      fc.array(value(1e3), { minLength: 0, maxLength: 100 }),
      (xs, ys) => {
        const a = new Accumulator(true);
        const b = new Accumulator(true);
        const whole = new Accumulator(true);
        xs.forEach((v, i) => {
          a.add(v, i, i);
          whole.add(v, i, i);
        });
        ys.forEach((v, i) => {
          b.add(v, 1000 + i, 1000 + i);
          whole.add(v, 1000 + i, 1000 + i);
        });
        a.merge(b);
        const ra = a.result(ALL);
        const rw = whole.result(ALL);
        assert.equal(ra.count, rw.count);
        assert.equal(ra.min, rw.min);
        assert.equal(ra.max, rw.max);
        assert.equal(ra.first, rw.first);
        assert.equal(ra.last, rw.last);
        assert.equal(ra.p50, rw.p50);
        assert.equal(ra.p95, rw.p95);
        for (const k of ['sum', 'mean', 'stddev'] as const)
          assert.ok(Math.abs(ra[k]! - rw[k]!) <= 1e-9 * 1e3 * rw.count, k);
      },
    ),
    { numRuns: 200 },
  );
  const a = acc([1]);
  a.merge(acc([-5, -6]));
  assert.ok(Math.abs(a.quantile(0)! - -6) <= 0.06, String(a.quantile(0)));
});

test('JSON round trip gives identical results and further updates', () => {
  const a = acc([3, -2, 0, 7.5, 1e-9, -1e-9, 100]);
  const b = Accumulator.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
  assert.deepEqual(b.result(ALL), a.result(ALL));
  a.add(-40, 99, 99);
  b.add(-40, 99, 99);
  assert.deepEqual(b.result(ALL), a.result(ALL));
  const noSketch = new Accumulator(false);
  noSketch.add(1, 1, 1);
  assert.equal(Accumulator.fromJSON(noSketch.toJSON()).toJSON().sk, null);
});

test('anomaly_max: the highest reading score, through merge and checkpoint; absent when none was scored', () => {
  const all = new Set<AggregateName>(['count', 'anomaly_max']);
  const a = new Accumulator(false);
  a.add(1, 1, 0);
  assert.deepEqual(a.result(all), { count: 1 }, 'no score: no field');
  a.add(2, 2, 1, 0.3);
  a.add(3, 3, 2, 0.1);
  const b = new Accumulator(false);
  b.add(4, 4, 3, 0.9);
  assert.equal(a.result(all).anomaly_max, 0.3);
  const back = Accumulator.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
  assert.equal(back.result(all).anomaly_max, 0.3);
  back.merge(b);
  assert.equal(back.result(all).anomaly_max, 0.9);
  // a checkpoint from before the field existed loads with no score
  const old = a.toJSON();
  delete old.am;
  assert.equal(Accumulator.fromJSON(old).result(all).anomaly_max, undefined);
});

test('p50/p95 exact up to EXACT_MAX values, then the sketch; a checkpoint on either side of the switch resumes identically (issue 14)', () => {
  const values = Array.from({ length: EXACT_MAX + 20 }, (_, i) => ((i * 37) % 101) - 50.5);
  const whole = new Accumulator(true);
  for (let i = 0; i < values.length; i++) {
    whole.add(values[i]!, i, i);
    if (i + 1 === EXACT_MAX) {
      assert.equal(whole.quantile(0.5), exactQuantile(values.slice(0, EXACT_MAX), 0.5), 'exact at EXACT_MAX');
      assert.equal(whole.quantile(0.95), exactQuantile(values.slice(0, EXACT_MAX), 0.95));
    }
  }
  for (const cut of [EXACT_MAX - 1, EXACT_MAX, EXACT_MAX + 1]) {
    const a = new Accumulator(true);
    for (let i = 0; i < cut; i++) a.add(values[i]!, i, i);
    const b = Accumulator.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    for (let i = cut; i < values.length; i++) b.add(values[i]!, i, i);
    assert.deepEqual(b.result(ALL), whole.result(ALL), `checkpoint after ${cut} values`);
  }
  // a checkpoint written before issue 14 (sketch bins, no held values) still loads into a sketch
  const old = whole.toJSON();
  assert.equal(old.v, undefined);
  assert.deepEqual(Accumulator.fromJSON(old).result(ALL), whole.result(ALL));
});
