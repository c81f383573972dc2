import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AggregateName } from '../../shared/model.ts';
import { Accumulator, type AccumulatorJSON, EXACT_MAX } from './aggregates.ts';

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

// Written by main at 82d7523 (fields as object properties) for the inputs below: an accumulator's JSON is
// part of every window checkpoint, so the packed-array layout (issue 14) must write the same bytes and
// load what the previous version wrote.
const PREVIOUS_VERSION = {
  exact: {
    n: 7,
    sum: 120.98000010000001,
    comp: -1.1826750783234727e-14,
    mean: 17.282857157142857,
    m2: 1375.4063394005711,
    min: -3.25,
    max: 42,
    first: [1700000000000, 0, 20.37],
    last: [1700000000400, 2, -3.25],
    sk: null,
    v: [20.37, 21.5, -3.25, 1e-7, 19.99, 20.37, 42],
    am: 0.75,
  },
  exactResult: {
    count: 7,
    min: -3.25,
    max: 42,
    mean: 17.282857157142857,
    sum: 120.9800001,
    stddev: 14.01736850890235,
    first: 20.37,
    last: -3.25,
    p50: 20.37,
    p95: 21.5,
    anomaly_max: 0.75,
  },
  sketch: {
    n: 70,
    sum: -5.13429925098119,
    comp: -1.2101430968414206e-14,
    mean: -0.0733471321568746,
    m2: 345431.57786093204,
    min: -99.99902065507035,
    max: 99.99118601072672,
    first: [1700000000000, 1000, 0],
    last: [1700000000069, 1069, -11.478481378318723],
    sk: {
      p: [
        29, 1, 126, 1, 133, 1, 136, 1, 141, 1, 165, 1, 170, 1, 184, 1, 186, 1, 187, 1, 189, 1, 199, 1, 201, 1,
        208, 1, 209, 1, 210, 1, 211, 1, 216, 1, 217, 1, 221, 1, 222, 2, 223, 1, 226, 3, 227, 1, 229, 2, 230,
        4, 231, 1,
      ],
      n: [
        -6, 1, 49, 1, 123, 1, 130, 1, 139, 1, 164, 1, 167, 1, 168, 1, 171, 1, 185, 1, 188, 1, 198, 1, 200, 2,
        202, 1, 209, 1, 210, 1, 216, 2, 217, 1, 218, 1, 222, 2, 223, 1, 225, 1, 226, 2, 228, 1, 229, 3, 230,
        2, 231, 2,
      ],
      z: 1,
    },
    am: null,
  },
  sketchResult: {
    count: 70,
    min: -99.99902065507035,
    max: 99.99118601072672,
    mean: -0.0733471321568746,
    sum: -5.134299250981202,
    stddev: 70.24768200150623,
    first: 0,
    last: -11.478481378318723,
    p50: -0.8780477199413345,
    p95: 98.5045762687935,
  },
};

test('checkpoint JSON of the previous version loads, and the same inputs write the same bytes (issue 14 layout)', () => {
  const WITH_SCORE = new Set<AggregateName>([...ALL, 'anomaly_max']);
  const a = new Accumulator(true);
  const xs = [20.37, 21.5, -3.25, 1e-7, 19.99, 20.37, 42];
  for (let i = 0; i < xs.length; i++)
    a.add(xs[i]!, 1_700_000_000_000 + ((i * 7) % 5) * 100, i, i === 3 ? 0.75 : undefined);
  const s = new Accumulator(true);
  for (let i = 0; i < 70; i++) s.add(Math.sin(i) * 100, 1_700_000_000_000 + i, 1000 + i);
  assert.equal(JSON.stringify(a.toJSON()), JSON.stringify(PREVIOUS_VERSION.exact));
  assert.equal(JSON.stringify(s.toJSON()), JSON.stringify(PREVIOUS_VERSION.sketch));
  assert.equal(
    JSON.stringify(a.toJSON(true)),
    JSON.stringify(PREVIOUS_VERSION.exact),
    'serialise: same JSON',
  );
  assert.deepEqual(a.result(WITH_SCORE), PREVIOUS_VERSION.exactResult);
  assert.deepEqual(s.result(WITH_SCORE), PREVIOUS_VERSION.sketchResult);
  const back = Accumulator.fromJSON(PREVIOUS_VERSION.exact as AccumulatorJSON);
  const backSketch = Accumulator.fromJSON(PREVIOUS_VERSION.sketch as AccumulatorJSON);
  assert.deepEqual(back.result(WITH_SCORE), PREVIOUS_VERSION.exactResult);
  assert.deepEqual(backSketch.result(WITH_SCORE), PREVIOUS_VERSION.sketchResult);
  // and they go on from there as the original would have
  back.add(-7, 1_700_000_000_050, 7, 0.9);
  a.add(-7, 1_700_000_000_050, 7, 0.9);
  assert.deepEqual(back.result(WITH_SCORE), a.result(WITH_SCORE));
  assert.equal(back.minTs, 1_700_000_000_000);
  assert.equal(back.maxTs, 1_700_000_000_400);
});

test('held values through every room step: adding, merging and restoring at any count give one accumulator fed everything (issue 14)', () => {
  const xs = Array.from({ length: EXACT_MAX + 6 }, (_, i) => ((i * 53) % 97) / 4 - 7);
  const fed = (from: number, to: number) => {
    const a = new Accumulator(true);
    for (let i = from; i < to; i++) a.add(xs[i]!, 1_700_000_000_000 + i, i);
    return a;
  };
  // from 1: an accumulator is never empty (its JSON has no infinite bounds)
  for (let n = 1; n <= xs.length; n++) {
    const whole = fed(0, n);
    const json = JSON.stringify(whole.toJSON());
    assert.equal(JSON.stringify(whole.toJSON(true)), json, `serialise at ${n}`);
    // restored at n values, then the rest: as if never stopped
    const back = Accumulator.fromJSON(JSON.parse(json));
    const all = fed(0, xs.length);
    for (let i = n; i < xs.length; i++) back.add(xs[i]!, 1_700_000_000_000 + i, i);
    assert.equal(JSON.stringify(back.toJSON()), JSON.stringify(all.toJSON()), `restored at ${n}`);
    // merged at every split of the first n values
    for (let cut = 0; cut <= n; cut += 3) {
      const left = fed(0, cut);
      left.merge(fed(cut, n));
      // (mean and stddev of a merge differ from one pass in the last bits: Chan's update)
      const pick = ({ count, p50, p95, min, max }: ReturnType<Accumulator['result']>) => ({
        count,
        p50,
        p95,
        min,
        max,
      });
      assert.deepEqual(pick(left.result(ALL)), pick(whole.result(ALL)), `${cut} + ${n - cut}`);
      if (n <= EXACT_MAX)
        assert.deepEqual(
          left.toJSON().v,
          whole
            .toJSON()
            .v?.slice()
            .sort((p, q) => p - q),
        );
    }
  }
});
