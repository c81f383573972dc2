// Every statistical kind (issue 11) on the series that used to break them: constant, quantised (most
// values equal), and a restart from a checkpoint in the middle, which must give the same scores and
// alerts as an uninterrupted run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { RuleEngine, type RuleSpec, type RuleSpecInput } from './engine.ts';
import { rng, T0 } from './testkit.ts';

const KINDS: RuleSpecInput[] = [
  { name: 'z', kind: 'zscore' },
  { name: 'ze', kind: 'zscore', mode: 'ewma' },
  { name: 's', kind: 'spike' },
  { name: 'c', kind: 'changepoint' },
  { name: 'a', kind: 'anomaly', warmup: '1h', minSamples: 30 },
];

function run(spec: RuleSpecInput, vals: readonly number[], cut: number | null = null) {
  const clock = new FakeClock(T0);
  const alerts: string[] = [];
  const sink = {
    alert: (a: { id: string; state: string; score?: number }) => alerts.push(`${a.state}:${a.id}:${a.score}`),
  };
  const specs = [spec as RuleSpec];
  let eng = new RuleEngine(specs, { agentId: 'gw', clock }, sink);
  const scores: (number | undefined)[] = [];
  vals.forEach((v, i) => {
    if (i === cut)
      eng = RuleEngine.restore(
        JSON.parse(JSON.stringify(eng.snapshot())),
        specs,
        { agentId: 'gw', clock },
        sink,
      );
    scores.push(eng.onReading({ device: 'd', metric: 'm', value: v, ts: T0 + i * 60_000 }));
  });
  return { scores, alerts, errors: eng.stats().evalErrors };
}

const quantised = (() => {
  const r = rng(21);
  return Array.from({ length: 1500 }, () => {
    const u = r();
    return u < 0.57 ? 40 : u < 0.8 ? 41 : u < 0.97 ? 39 : 43;
  });
})();

describe('statistical kinds: edge cases', () => {
  for (const spec of KINDS) {
    it(`${spec.name} (${spec.kind}): a constant series scores finitely and never fires`, () => {
      const o = run(spec, new Array(1500).fill(7.25));
      assert.equal(o.alerts.length, 0);
      assert.equal(o.errors, 0);
      assert.ok(o.scores.every((s) => s === undefined || (Number.isFinite(s) && s >= 0 && s <= 1)));
    });

    it(`${spec.name} (${spec.kind}): a quantised series (57 % equal values) gives finite scores in [0, 1]`, () => {
      const o = run(spec, quantised);
      assert.equal(o.errors, 0);
      assert.ok(o.scores.some((s) => s !== undefined));
      assert.ok(o.scores.every((s) => s === undefined || (Number.isFinite(s) && s >= 0 && s <= 1)));
      // 25 h of 1-minute readings, cooldown 6 h: at most 5 episodes can fire
      const fired = o.alerts.filter((a) => a.startsWith('firing:')).length;
      assert.ok(fired <= 5, `${fired} alerts fired`);
    });

    it(`${spec.name} (${spec.kind}): a restart from a checkpoint gives the same scores and alerts`, () => {
      const r = rng(22);
      const vals = Array.from(
        { length: 1500 },
        (_, i) => 5 + Math.sin(i / 40) + 0.2 * r() + (i > 1000 ? 3 : 0),
      );
      const whole = run(spec, vals);
      assert.ok(whole.alerts.length > 0, 'the shift at 1000 is detected');
      for (const cut of [3, 700, 1001]) assert.deepEqual(run(spec, vals, cut), whole, `restart at ${cut}`);
    });
  }
});
