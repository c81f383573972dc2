// Issue 11's lifecycle and scope additions, for every kind alike: `cooldown`, the per-reading score
// (returned by onReading, in alerts, in `when`), spans as durations, the scale-free rate, and the
// cooldown surviving a checkpoint.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { RuleEngine, type RuleSpec } from './engine.ts';
import { gauss, harness, rng, T0 } from './testkit.ts';

const noise = (n: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => 20 + gauss(r));
};

describe('cooldown', () => {
  it('threshold: a new episode within cooldown of the last resolution does not fire; after it does', () => {
    const h = harness([{ name: 't', kind: 'threshold', when: 'value > 10', cooldown: '1m' }]);
    h.read(11, 0);
    h.read(1, 1000); // resolved at 1s: quiet until 61s
    h.read(11, 30_000);
    h.read(1, 31_000);
    h.read(11, 60_999);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    h.read(11, 61_000);
    assert.deepEqual(h.states(), ['firing', 'resolved', 'firing']);
  });

  it('defaults: 0 for threshold, 6h for the statistical kinds', () => {
    const t = harness([{ name: 't', kind: 'threshold', when: 'value > 10' }]);
    t.series([11, 1, 11], 0, 1000);
    assert.deepEqual(t.states(), ['firing', 'resolved', 'firing']);
    const z = harness([{ name: 'z', kind: 'zscore', window: 20 }]);
    let at = z.series(noise(30, 1), 0, 1000);
    z.read(100, at);
    at = z.series(noise(30, 2), at + 1000, 1000);
    z.read(100, at);
    assert.deepEqual(z.states(), ['firing', 'resolved'], 'the second outlier is within 6h');
  });

  it('is checkpointed: a restart inside the quiet period stays quiet', () => {
    const clock = new FakeClock(T0);
    const spec = [
      { name: 't', kind: 'threshold', when: 'value > 10', cooldown: '1m' } as unknown as RuleSpec,
    ];
    const out: string[] = [];
    const sink = { alert: (a: { state: string }) => out.push(a.state) };
    const a = new RuleEngine(spec, { agentId: 'gw', clock }, sink);
    a.onReading({ device: 'd', metric: 'm', value: 11, ts: T0 });
    a.onReading({ device: 'd', metric: 'm', value: 1, ts: T0 + 1000 });
    const b = RuleEngine.restore(
      JSON.parse(JSON.stringify(a.snapshot())),
      spec,
      { agentId: 'gw', clock },
      sink,
    );
    b.onReading({ device: 'd', metric: 'm', value: 11, ts: T0 + 30_000 });
    assert.deepEqual(out, ['firing', 'resolved']);
    b.onReading({ device: 'd', metric: 'm', value: 1, ts: T0 + 31_000 });
    b.onReading({ device: 'd', metric: 'm', value: 11, ts: T0 + 61_000 });
    assert.deepEqual(out, ['firing', 'resolved', 'firing']);
  });
});

describe('per-reading score', () => {
  it('onReading returns the highest score of the matching statistical rules; none from threshold', () => {
    const h = harness([
      { name: 't', kind: 'threshold', when: 'value > 1000' },
      { name: 'z', kind: 'zscore', window: 20 },
      { name: 's', kind: 'spike', window: 20 },
    ]);
    const vals = noise(40, 3);
    let last: number | undefined;
    vals.forEach((v, i) => {
      last = h.engine.onReading({ device: 's1', metric: 'temperature', value: v, ts: T0 + i * 1000 });
    });
    assert.ok(last !== undefined && last >= 0 && last < 1);
    const spikeScore = h.engine.onReading({
      device: 's1',
      metric: 'temperature',
      value: 60,
      ts: T0 + 40_000,
    });
    assert.ok(spikeScore !== undefined && spikeScore > 0.999999);
    const only = harness([{ name: 't', kind: 'threshold', when: 'value > 1000' }]);
    assert.equal(only.engine.onReading({ device: 'a', metric: 'b', value: 1, ts: T0 }), undefined);
  });

  it('alerts carry the score; `when` can test it', () => {
    const h = harness([{ name: 'z', kind: 'zscore', window: 20, when: 'score > 0.999' }]);
    const at = h.series(noise(25, 4), 0, 1000);
    h.read(40, at);
    assert.equal(h.alerts.length, 1);
    assert.ok(h.alerts[0]!.score! > 0.999 && h.alerts[0]!.score! <= 1);
    const t = harness([{ name: 't', kind: 'threshold', when: 'value > 10' }]);
    t.read(11, 0);
    assert.equal(t.alerts[0]!.score, undefined, 'a stated condition has no score');
  });

  it('changepoint scores max(S+, S-)/h, 1 when it fires', () => {
    const h = harness([{ name: 'c', kind: 'changepoint', warmup: 20, cooldown: 0 }]);
    const scores: number[] = [];
    h.series(noise(20, 5), 0, 1000);
    for (let i = 20; i < 40; i++)
      scores.push(
        h.engine.onReading({ device: 's1', metric: 'temperature', value: 25, ts: T0 + i * 1000 }) ?? -1,
      );
    const fire = h.alerts.findIndex((a) => a.state === 'firing');
    assert.ok(fire === 0);
    assert.ok(scores.includes(1));
    assert.ok(
      scores.slice(0, scores.indexOf(1)).every((s, i, a) => i === 0 || s >= a[i - 1]!),
      'rises to 1',
    );
  });
});

describe('spans as durations', () => {
  it('zscore window: 10s is the same baseline as 10 readings at 1 Hz', () => {
    const vals = [...noise(50, 6), 35, ...noise(20, 7)];
    const a = harness([{ name: 'z', kind: 'zscore', window: 10 }]);
    const b = harness([{ name: 'z', kind: 'zscore', window: '10s', warmup: 10 }]);
    a.series(vals, 0, 1000);
    b.series(vals, 0, 1000);
    assert.deepEqual(
      b.alerts.map((x) => [x.state, x.ts, x.score]),
      a.alerts.map((x) => [x.state, x.ts, x.score]),
    );
    assert.ok(a.alerts.length > 0);
  });

  it('bad spans are config errors with the key', () => {
    assert.throws(
      () => harness([{ name: 'z', kind: 'zscore', window: 'soon' }]),
      /rules\.0\.window: invalid duration/,
    );
    assert.throws(() => harness([{ name: 'z', kind: 'zscore', window: 1.5 }]), /rules\.0\.window/);
  });
});

describe('rate (scaled)', () => {
  it('is in units of the series own typical rate, whatever the unit', () => {
    for (const unit of [1, 1000]) {
      const h = harness([{ name: 'r', kind: 'rate', scaled: true, span: '10m', when: 'abs(rate) > 8' }]);
      const r = rng(8);
      let v = 0;
      for (let i = 0; i < 1200; i++) {
        v += gauss(r) * unit;
        h.read(v, i * 1000);
      }
      assert.equal(h.alerts.length, 0, `no alert on a random walk (unit ${unit})`);
      h.read(v + 30 * unit, 1200 * 1000);
      assert.deepEqual(h.states(), ['firing'], `a 30-step jump fires (unit ${unit})`);
      assert.ok(h.alerts[0]!.value! > 8);
    }
  });
});
