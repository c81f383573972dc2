// Test helpers shared by the rule tests (not a test file itself): an engine on a FakeClock that
// records every alert, and shorthand for readings and summaries.
import { FakeClock } from '../../shared/clock.ts';
import { type Alert, alertSchema, type Summary } from '../../shared/model.ts';
import { RuleEngine, type RuleSpec, type RuleSpecInput } from './engine.ts';

export const T0 = Date.UTC(2024, 0, 1);

export interface Harness {
  engine: RuleEngine;
  clock: FakeClock;
  alerts: Alert[];
  /** Feeds a reading at T0 + `at` ms. */
  read(value: number, at: number, device?: string, metric?: string): void;
  /** Feeds several values one `step` ms apart starting at T0 + `from`; returns the next free time. */
  series(values: readonly number[], from: number, step: number, device?: string, metric?: string): number;
  /** States of the alerts emitted so far, e.g. ['firing', 'resolved']. */
  states(): string[];
}

export function harness(specs: RuleSpecInput[], clock = new FakeClock(T0)): Harness {
  const alerts: Alert[] = [];
  const out = {
    alert(a: Alert) {
      alertSchema.parse(a); // every emitted item must satisfy the wire schema
      alerts.push(a);
    },
  };
  const engine = new RuleEngine(specs as RuleSpec[], { agentId: 'gw-test', clock }, out);
  const h: Harness = {
    engine,
    clock,
    alerts,
    read(value, at, device = 's1', metric = 'temperature') {
      engine.onReading({ device, metric, value, ts: T0 + at });
    },
    series(values, from, step, device, metric) {
      let t = from;
      for (const v of values) {
        h.read(v, t, device, metric);
        t += step;
      }
      return t;
    },
    states: () => alerts.map((a) => a.state),
  };
  return h;
}

export function summary(window: string, start: number, size: number, fields: Partial<Summary> = {}): Summary {
  return {
    id: `sum-${window}-${start}`,
    rev: 0,
    device: 's1',
    metric: 'temperature',
    window: { name: window, type: 'tumbling', start: T0 + start, end: T0 + start + size },
    count: 10,
    min: 1,
    max: 1,
    mean: 1,
    sum: 10,
    stddev: 0,
    first: 1,
    last: 1,
    p50: 1,
    p95: 1,
    late: 0,
    tags: {},
    ...fields,
  };
}

/** A deterministic pseudo-random generator (mulberry32) for noisy synthetic series. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian noise (Box–Muller) from `rand`. */
export function gauss(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}
