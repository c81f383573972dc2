// The anomaly kind: edge cases (constant, quantised, seasonal), a restart from a checkpoint giving
// the same scores as an uninterrupted run, bounded state, and the likelihood's tail against a slow
// numerical integration (the oracle beside the fast approximation).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { anomalyParams, anomalySpecSchema } from './anomaly.ts';
import { anomalyInit, anomalyUpdate, normalTail } from './anomaly-model.ts';
import { RuleEngine, type RuleSpec } from './engine.ts';
import { gauss, harness, rng, T0 } from './testkit.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const rule = { name: 'a', kind: 'anomaly' } as const;

/** Scores of `values` (one every `step` ms) through the default model. */
function scores(values: readonly number[], step: number): (number | null)[] {
  const p = anomalyParams(anomalySpecSchema().parse(rule));
  const s = anomalyInit();
  return values.map((v, i) => anomalyUpdate(s, p, T0 + i * step, v).score);
}

describe('anomaly kind', () => {
  it('a constant series scores 0 and never fires', () => {
    const h = harness([rule]);
    h.series(new Array(3000).fill(42), 0, 5 * MIN);
    assert.equal(h.alerts.length, 0);
    const sc = scores(new Array(3000).fill(42), 5 * MIN);
    // tail 0.5 (the recent errors exactly as usual) is a score of 0.03
    assert.ok(sc.every((x) => x === null || x < 0.05));
  });

  it('a quantised series (integers, most values equal) gives finite scores and does not flood', () => {
    const r = rng(7);
    const vals = Array.from({ length: 6000 }, () => {
      const u = r();
      return u < 0.6 ? 10 : u < 0.8 ? 11 : u < 0.95 ? 9 : 12;
    });
    const sc = scores(vals, MIN);
    assert.ok(sc.every((x) => x === null || (Number.isFinite(x) && x >= 0 && x <= 1)));
    const h = harness([rule]);
    h.series(vals, 0, MIN);
    const days = (6000 * MIN) / DAY;
    assert.ok(h.alerts.filter((a) => a.state === 'firing').length <= days, `${h.alerts.length} alerts`);
  });

  it('learns a daily cycle: no alert on 10 days of it, and the cycle at the wrong hour fires', () => {
    const r = rng(3);
    const at = (t: number) => 20 + 5 * Math.sin((2 * Math.PI * t) / DAY) + 0.2 * gauss(r);
    const h = harness([rule]);
    const step = 5 * MIN;
    const n = (10 * DAY) / step;
    for (let i = 0; i < n; i++) h.read(at(i * step), i * step);
    assert.deepEqual(
      h.alerts.map((a) => [a.ts - T0, a.score]),
      [],
      'the cycle itself is normal',
    );
    // Then the value of the opposite phase for two hours: within the range seen, but wrong for the hour.
    for (let i = n; i < n + 24; i++) h.read(40 - at(i * step), i * step);
    assert.equal(h.alerts.filter((a) => a.state === 'firing').length, 1, JSON.stringify(h.alerts));
    assert.ok(h.alerts[0]!.score !== undefined && h.alerts[0]!.score >= 0.4);
  });

  it('fires once on a level shift, carries the score, and stays quiet for the cooldown', () => {
    const r = rng(11);
    const h = harness([rule]);
    const step = MIN;
    let i = 0;
    for (; i < 2 * 1440; i++) h.read(50 + gauss(r), i * step);
    assert.equal(h.alerts.length, 0);
    for (; i < 2 * 1440 + 240; i++) h.read(58 + gauss(r), i * step);
    const fired = h.alerts.filter((a) => a.state === 'firing');
    assert.equal(fired.length, 1);
    assert.match(fired[0]!.message, /score/);
  });

  it('one configuration, two sample rates: the same time spans', () => {
    // The same shape at 1-minute and at 10-second sampling fires at the same event time (± a sample).
    const fireAt = (step: number) => {
      const r = rng(5);
      const h = harness([rule]);
      for (let t = 0; t < 3 * DAY; t += step) h.read((t > 2 * DAY ? 30 : 20) + 0.5 * gauss(r), t);
      return h.alerts.find((a) => a.state === 'firing')?.ts;
    };
    const a = fireAt(MIN);
    const b = fireAt(10_000);
    assert.ok(a !== undefined && b !== undefined);
    assert.ok(Math.abs(a - b) <= MIN, `${a - T0} vs ${b - T0}`);
  });

  it('a restart from a checkpoint gives the same scores and alerts as an uninterrupted run', () => {
    const r = rng(9);
    const vals = Array.from(
      { length: 4000 },
      (_, i) => 10 + Math.sin(i / 50) + 0.3 * gauss(r) + (i > 3000 ? 4 : 0),
    );
    const step = 5 * MIN;
    const run = (cut: number | null) => {
      const clock = new FakeClock(T0);
      const out: string[] = [];
      const sink = { alert: (a: { id: string }) => out.push(a.id) };
      const specs = [rule as unknown as RuleSpec];
      let eng = new RuleEngine(specs, { agentId: 'gw', clock }, sink);
      const sc: (number | undefined)[] = [];
      vals.forEach((v, i) => {
        if (i === cut)
          eng = RuleEngine.restore(
            JSON.parse(JSON.stringify(eng.snapshot())),
            specs,
            { agentId: 'gw', clock },
            sink,
          );
        sc.push(eng.onReading({ device: 'd', metric: 'm', value: v, ts: T0 + i * step }));
      });
      return { sc, out };
    };
    const whole = run(null);
    assert.ok(whole.out.length > 0, 'the shift fires');
    for (const cut of [1, 500, 2999, 3001]) assert.deepEqual(run(cut), whole, `restart at ${cut}`);
  });

  it('state per key stays under 16 KB, however long the series', () => {
    const h = harness([rule]);
    const r = rng(1);
    for (let i = 0; i < 20_000; i++) h.read(gauss(r), i * MIN);
    const bytes = JSON.stringify(h.engine.snapshot().rules[0]!.keys[0]).length;
    assert.ok(bytes < 16 * 1024, `${bytes} bytes`);
  });

  it('normalTail agrees with a slow numerical integration of the normal density', () => {
    const slow = (z: number) => {
      // Simpson's rule on [z, z + 40]
      const n = 20_000;
      const h = 40 / n;
      const f = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
      let s = f(z) + f(z + 40);
      for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * f(z + i * h);
      return (s * h) / 3;
    };
    for (const z of [-3, -1, 0, 0.5, 1, 2, 3, 4, 5, 6]) {
      const a = normalTail(z);
      const b = slow(z);
      assert.ok(Math.abs(a - b) <= 2e-7 + 1e-6 * b, `z=${z}: ${a} vs ${b}`);
    }
  });

  it('spans are durations; `when` sees the score; bad spans are config errors', () => {
    const spec = anomalySpecSchema().parse({ ...rule, warmup: '2h', threshold: 0.9 });
    assert.equal(spec.warmup, 2 * HOUR);
    const h = harness([{ ...rule, when: 'score > 0.99 && value > 0' }]);
    h.series([1, 2, 3], 0, MIN);
    assert.equal(h.alerts.length, 0);
    assert.equal(anomalySpecSchema().safeParse({ ...rule, slow: 'soon' }).success, false);
  });
});
