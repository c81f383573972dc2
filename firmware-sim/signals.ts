// Signal models of the simulated sensors. Each device draws its own phase, offset and noise level from
// the seed; each metric has its own random stream, so enabling another metric does not change the
// values of the others. Time enters only as the sample's event time, never as the wall clock, so the
// stream is the same however fast or slow the scheduler runs. Probabilities of random events are scaled
// by the sample period, so a device behaves alike at 0.1 Hz and at 1 kHz.
import { gaussian, type Rng, streamFor, uniform } from './prng.ts';

export const METRICS = ['temperature', 'vibration', 'current', 'humidity'] as const;
export type Metric = (typeof METRICS)[number];

export interface MetricInfo {
  /** SenML unit (RFC 8428 section 12.1 registry). */
  unit: string;
  /** Decimals kept on the wire, like a real sensor's resolution. */
  decimals: number;
  /** Typical size of a deviation, used to size injected anomalies. */
  scale: number;
  min: number;
  max: number;
}

export const METRIC_INFO: Record<Metric, MetricInfo> = {
  temperature: { unit: 'Cel', decimals: 2, scale: 6, min: -40, max: 125 },
  vibration: { unit: 'm/s2', decimals: 3, scale: 3, min: 0, max: 200 },
  current: { unit: 'A', decimals: 2, scale: 8, min: 0, max: 100 },
  humidity: { unit: '%RH', decimals: 1, scale: 20, min: 0, max: 100 },
};

export function isMetric(s: string): s is Metric {
  return (METRICS as readonly string[]).includes(s);
}

export function roundTo(v: number, decimals: number): number {
  const f = 10 ** decimals;
  const r = Math.round(v * f) / f;
  return Object.is(r, -0) ? 0 : r;
}

const DAY_MS = 86_400_000;

/** Parameters of one device's daily temperature cycle; humidity follows it inversely. */
interface Climate {
  base: number;
  amplitude: number;
  /** Fraction of a day by which this device's cycle is shifted. */
  phase: number;
}

function dailyCycle(c: Climate, ts: number): number {
  // Warmest around 15:00 UTC + phase: sin peaks at a quarter period after 09:00.
  const day = (((ts / DAY_MS + c.phase) % 1) + 1) % 1;
  return Math.sin(2 * Math.PI * (day - 0.375));
}

type Model = (ts: number, periodMs: number) => number;

function temperature(rng: Rng, c: Climate): Model {
  const noiseSd = uniform(rng, 0.03, 0.15);
  let ar = 0; // slowly wandering component (AR(1)) on top of the daily cycle
  return (ts, periodMs) => {
    const keep = Math.exp(-periodMs / 300_000);
    ar = keep * ar + Math.sqrt(1 - keep * keep) * 0.4 * gaussian(rng);
    return c.base + c.amplitude * dailyCycle(c, ts) + ar + noiseSd * gaussian(rng);
  };
}

function humidity(rng: Rng, c: Climate): Model {
  const base = uniform(rng, 40, 60);
  const coupling = uniform(rng, 1.5, 3); // %RH per unit of the temperature cycle: anti-correlated
  let ar = 0;
  return (ts, periodMs) => {
    const keep = Math.exp(-periodMs / 600_000);
    ar = keep * ar + Math.sqrt(1 - keep * keep) * 1.5 * gaussian(rng);
    const v = base - coupling * c.amplitude * dailyCycle(c, ts) + ar + 0.2 * gaussian(rng);
    return Math.min(100, Math.max(0, v));
  };
}

/** RMS vibration with occasional bursts (a machine starting, a passing forklift) that decay. */
function vibration(rng: Rng): Model {
  const base = uniform(rng, 0.3, 0.8);
  const burstEveryMs = uniform(rng, 30_000, 120_000);
  let burstAmp = 0;
  let burstTau = 1;
  let sinceBurst = Number.POSITIVE_INFINITY;
  return (_ts, periodMs) => {
    sinceBurst += periodMs;
    if (rng() < periodMs / burstEveryMs) {
      burstAmp = base * uniform(rng, 2, 6);
      burstTau = uniform(rng, 500, 4000);
      sinceBurst = 0;
    }
    const burst = Number.isFinite(sinceBurst) ? burstAmp * Math.exp(-sinceBurst / burstTau) : 0;
    return base * Math.exp(0.08 * gaussian(rng)) + burst;
  };
}

/** Motor current stepping between idle, part load and full load, with a little sensor noise. */
function current(rng: Rng): Model {
  const idle = uniform(rng, 0.5, 2);
  const full = uniform(rng, 10, 20);
  const levels = [idle, (idle + full) / 2, full];
  const meanDwellMs = uniform(rng, 20_000, 90_000);
  let level = Math.floor(rng() * levels.length);
  return (_ts, periodMs) => {
    if (rng() < periodMs / meanDwellMs)
      level = (level + 1 + Math.floor(rng() * (levels.length - 1))) % levels.length;
    const l = levels[level]!;
    return Math.max(0, l + (0.02 * l + 0.03) * gaussian(rng));
  };
}

/** All signal models of one device. `sample` must be called once per tick, in tick order. */
export class DeviceSignals {
  private readonly models: Map<Metric, Model>;
  constructor(seed: string | number, device: string, metrics: readonly Metric[]) {
    const climateRng = streamFor(seed, 'climate', device);
    const climate: Climate = {
      base: uniform(climateRng, 17, 25),
      amplitude: uniform(climateRng, 2, 6),
      phase: uniform(climateRng, -0.1, 0.1),
    };
    const make: Record<Metric, (rng: Rng) => Model> = {
      temperature: (rng) => temperature(rng, climate),
      humidity: (rng) => humidity(rng, climate),
      vibration,
      current,
    };
    this.models = new Map(metrics.map((m) => [m, make[m](streamFor(seed, 'signal', device, m))]));
  }

  /** Raw (unrounded) value of `metric` at event time `ts`. */
  sample(metric: Metric, ts: number, periodMs: number): number {
    const model = this.models.get(metric);
    if (!model) throw new RangeError(`metric ${metric} not enabled for this device`);
    return model(ts, periodMs);
  }
}
