import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deriveSeed, mulberry32 } from './prng.ts';
import { DeviceSignals, METRIC_INFO, METRICS, type Metric } from './signals.ts';

const T0 = Date.UTC(2024, 0, 1);

function series(
  seed: string,
  device: string,
  metrics: readonly Metric[],
  metric: Metric,
  n: number,
  periodMs = 1000,
) {
  const s = new DeviceSignals(seed, device, metrics);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const m of metrics) {
      const v = s.sample(m, T0 + i * periodMs, periodMs);
      if (m === metric) out.push(v);
    }
  }
  return out;
}

function correlation(a: number[], b: number[]): number {
  const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

describe('prng', () => {
  it('mulberry32 gives the same sequence for the same seed, within [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(
      xs,
      Array.from({ length: 1000 }, () => b()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, mulberry32(43)));
  });

  it('derives distinct seeds per role', () => {
    assert.equal(deriveSeed('1', 'signal', 'dev-001'), deriveSeed('1', 'signal', 'dev-001'));
    assert.notEqual(deriveSeed('1', 'signal', 'dev-001'), deriveSeed('1', 'signal', 'dev-002'));
    assert.notEqual(deriveSeed('1', 'ab', 'c'), deriveSeed('1', 'a', 'bc'));
  });
});

describe('signals', () => {
  it('same seed, same values; another seed or device, other values', () => {
    for (const m of METRICS) {
      const a = series('7', 'dev-001', METRICS, m, 500);
      assert.deepEqual(a, series('7', 'dev-001', METRICS, m, 500), m);
      assert.notDeepEqual(a, series('8', 'dev-001', METRICS, m, 500), m);
      assert.notDeepEqual(a, series('7', 'dev-002', METRICS, m, 500), m);
    }
  });

  it('a metric does not change when other metrics are enabled', () => {
    assert.deepEqual(
      series('3', 'd', ['vibration'], 'vibration', 300),
      series('3', 'd', METRICS, 'vibration', 300),
    );
  });

  it('values stay within each metric range', () => {
    for (const m of METRICS) {
      const info = METRIC_INFO[m];
      for (const v of series('5', 'dev-009', [m], m, 20_000, 100)) {
        assert.ok(Number.isFinite(v) && v >= info.min && v <= info.max, `${m} ${v}`);
      }
    }
  });

  it('temperature follows a daily cycle and humidity moves against it', () => {
    const period = 600_000; // every 10 minutes for two days
    const temp = series('11', 'dev-001', ['temperature', 'humidity'], 'temperature', 288, period);
    const hum = series('11', 'dev-001', ['temperature', 'humidity'], 'humidity', 288, period);
    assert.ok(Math.max(...temp) - Math.min(...temp) > 3, 'daily swing of several degrees');
    assert.ok(correlation(temp, hum) < -0.6, `correlation ${correlation(temp, hum)}`);
  });

  it('vibration has bursts well above its base level', () => {
    const v = series('2', 'dev-001', ['vibration'], 'vibration', 36_000, 100); // one hour at 10 Hz
    const sorted = [...v].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    assert.ok(sorted.at(-1)! > 2 * median, `max ${sorted.at(-1)} vs median ${median}`);
  });

  it('current steps between load levels', () => {
    const c = series('4', 'dev-001', ['current'], 'current', 3600, 1000);
    const jumps = c.slice(1).filter((v, i) => Math.abs(v - c[i]!) > 3).length;
    assert.ok(jumps >= 10 && jumps < 1000, `${jumps} load steps in an hour`);
  });
});
