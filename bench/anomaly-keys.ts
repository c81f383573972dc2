// `npm run bench -- anomaly-keys`: the `anomaly` kind with 10,000 active keys (issue 11 target:
// ≥ 200,000 readings/s per core, ≤ 16 KB per key). Readings go round-robin over the keys (the worst
// case for caches: every reading touches another key's state), one minute apart per key, a noisy
// daily cycle, through RuleEngine.onReading as the runtime calls it. Memory per key is the heap
// growth over the engine with 10,000 warmed keys divided by 10,000 (after a forced GC when node runs
// with --expose-gc), and the checkpoint JSON per key. A zscore rule (rolling, 60) runs beside it as
// the in-process baseline: absolute figures move with the machine's load, ratios much less.
import { RuleEngine, type RuleSpec, type RuleSpecInput } from '../agent/rules/engine.ts';
import { FakeClock } from '../shared/clock.ts';
import { type BenchResult, isMain, printResult, stopwatch } from './lib.ts';

const KEYS = Number(process.env.EDGEFLOW_BENCH_KEYS ?? 10_000);
const ROUNDS = Number(process.env.EDGEFLOW_BENCH_ROUNDS ?? 60);
const WARM_ROUNDS = 30;
const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1);

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}

function runCase(spec: RuleSpecInput) {
  const devices = Array.from({ length: KEYS }, (_, i) => `dev-${i}`);
  const before = heapUsed();
  const engine = new RuleEngine(
    [spec as RuleSpec],
    { agentId: 'bench', clock: new FakeClock(T0) },
    { alert() {} },
  );
  let seed = 1;
  const noise = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647 - 0.5;
  };
  const r = { device: '', metric: 'temperature', value: 0, ts: 0 };
  const feed = (from: number, rounds: number) => {
    for (let k = from; k < from + rounds; k++) {
      const ts = T0 + k * MIN;
      const base = 20 + 5 * Math.sin((2 * Math.PI * k) / 1440);
      for (let i = 0; i < KEYS; i++) {
        r.device = devices[i]!;
        r.value = base + noise();
        r.ts = ts;
        engine.onReading(r);
      }
    }
  };
  // Every key past its warm-up before measuring (the anomaly case sets warmup 20m so 30 rounds do it
  // and the measured readings take the whole path: model, score, lifecycle).
  feed(0, WARM_ROUNDS);
  const sw = stopwatch();
  feed(WARM_ROUNDS, ROUNDS);
  const t = sw.stop();
  const n = KEYS * ROUNDS;
  const heapPerKey = Math.round((heapUsed() - before) / KEYS);
  const snap = engine.snapshot();
  const jsonPerKey = Math.round(JSON.stringify(snap).length / KEYS);
  return {
    rule: spec.name,
    keys: KEYS,
    readings: n,
    'readings/s (wall)': Math.round(n / t.seconds),
    'readings/s (cpu)': Math.round(n / t.cpuSeconds),
    'heap B/key': heapPerKey,
    'checkpoint B/key': jsonPerKey,
    load1: t.load1,
  };
}

export async function benchAnomalyKeys(): Promise<BenchResult> {
  const rows = [
    runCase({ name: 'zscore-rolling-60', kind: 'zscore' }),
    runCase({ name: 'anomaly', kind: 'anomaly', warmup: '20m', minSamples: 20 }),
  ];
  return {
    rows,
    notes: [
      `${KEYS} keys, round-robin, ${ROUNDS} readings per key measured; heap B/key is exact only with node --expose-gc`,
      'readings/s (cpu) = readings / (user+sys CPU seconds of this process): the per-core figure on a shared machine',
    ],
  };
}

if (isMain(import.meta.url)) printResult('anomaly-keys', await benchAnomalyKeys());
