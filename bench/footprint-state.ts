// Issue 14: bytes of engine state per key, in-process (no executable, no broker): the window and rule
// engines with bench/footprint.ts's 10k-keys config (bench/pipeline.ts's 3 window specs and 4 rules),
// 2,500 devices × 4 metrics at 1 reading/s each on a fake clock for EDGEFLOW_BENCH_FOOTPRINT_STATE_SECONDS
// [20] simulated seconds (the keys case runs 30 s of real time), then V8's heap used after a full GC,
// and what a checkpoint writes: the first (every bucket row) and the next after one more second.
// Needs --expose-gc; bench/footprint.ts runs it as a child and prints its JSON line.
//
//   node --expose-gc --import tsx bench/footprint-state.ts
import { agentSchema } from '../agent/load-config.ts';
import { RuleEngine } from '../agent/rules/engine.ts';
import { encodeCheckpointValue } from '../agent/runtime/checkpoint-codec.ts';
import { engineCheckpoints } from '../agent/runtime/checkpoint-parts.ts';
import { toRuleSpecs, toWindowSpecs } from '../agent/runtime/specs.ts';
import { WindowEngine } from '../agent/windows/engine.ts';
import { FakeClock } from '../shared/clock.ts';
import { METRICS, RULES_PIPELINE, WINDOWS_PIPELINE } from './footprint.ts';

const SECONDS = Number(process.env.EDGEFLOW_BENCH_FOOTPRINT_STATE_SECONDS ?? 20);
const DEVICES = 2500;
const KEYS = DEVICES * METRICS.length;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

const cfg = agentSchema.parse({
  agent: { id: 'fp-state', dataDir: '/nonexistent' },
  sources: [{ type: 'mqtt', name: 'm', url: 'mqtt://127.0.0.1:1', topics: ['x/#'], format: 'json' }],
  windows: WINDOWS_PIPELINE,
  rules: RULES_PIPELINE,
});
const clock = new FakeClock();
gc();
const before = process.memoryUsage().heapUsed;
const rules = new RuleEngine(toRuleSpecs(cfg.rules), { agentId: 'fp', clock }, { alert: () => {} });
const windows = new WindowEngine(
  toWindowSpecs(cfg.windows),
  { agentId: 'fp', maxOutOfOrder: 5_000, idleTimeout: 30_000, clock },
  { summary: (s) => rules.onSummary(s), late: () => {} },
);
let sent = 0;
const second = () => {
  for (let i = 0; i < KEYS; i++, sent++) {
    const k = sent % KEYS;
    const r = {
      device: `d${Math.floor(k / METRICS.length)}`,
      metric: METRICS[k % METRICS.length] as string,
      value: 20 + ((sent * 7919) % 1000) / 100,
      ts: clock.now() + Math.floor(i / 10),
    };
    rules.onReading(r);
    windows.ingest(r);
  }
  clock.advance(1000);
  windows.tick();
  rules.tick();
};
for (let s = 0; s < SECONDS; s++) second();
gc();
const stateBytes = process.memoryUsage().heapUsed - before;

// A checkpoint's rows as the checkpointer stores them (deflated when large).
const parted = engineCheckpoints(clock);
const write = () => {
  const t0 = performance.now();
  let bytes = 0;
  let rows = 0;
  for (const [, v] of [...parted.windows.entries(windows), ...parted.rules.entries(rules)]) {
    if (v === null) continue;
    bytes += encodeCheckpointValue(v).length;
    rows++;
  }
  parted.windows.written();
  parted.rules.written();
  return { rows, storedMiB: MiB(bytes), ms: Math.round(performance.now() - t0) };
};
const first = write();
second();
const next = write();
const t0 = performance.now();
const fullJson = JSON.stringify(windows.snapshot()).length + JSON.stringify(rules.snapshot()).length;
const fullMs = Math.round(performance.now() - t0);
console.log(
  JSON.stringify({
    seconds: SECONDS,
    keys: KEYS,
    windows: windows.stats().openWindows,
    stateMiB: MiB(stateBytes),
    bytesPerKey: Math.round(stateBytes / KEYS),
    checkpointFirst: first,
    checkpointNext: next,
    fullSnapshotJsonMiB: MiB(fullJson),
    fullSnapshotStringifyMs: fullMs,
  }),
);
