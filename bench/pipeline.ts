// Agent hot path, in-process: decode (json, csv, number) → WindowEngine (3 window specs, p50/p95
// included) → RuleEngine (4 rules), as agent/runtime/ingress.ts wires them (reading → rules.onReading,
// its score → windows.ingest, one monotonic clock read per frame; summary → rules.onSummary). Frames
// come from the simulator (firmware-sim/fleet.ts: 100 devices × 4 metrics, 1 Hz, anomalies and 1 %
// out-of-order frames), generated before timing.
//
// Baselines in the same run, over the same frames:
//   - decode floor: JSON.parse of each json frame (no validation, no Reading objects)
//   - aggregation floor: a naive Map keyed by device/metric/window-start doing tumbling count/sum/min/max
//     over the already-decoded readings (no watermark, no lateness, no percentiles, no emission order)
//
// Run alone: `node --import tsx bench/pipeline.ts` (EDGEFLOW_BENCH_PIPELINE_TICKS = sample ticks, 500).
import { createDecoder, type FrameFormat } from '../agent/decoders/index.ts';
import { RuleEngine, type RuleSpec } from '../agent/rules/engine.ts';
import { WindowEngine } from '../agent/windows/engine.ts';
import type { WindowSpec } from '../agent/windows/window.ts';
import { Fleet } from '../firmware-sim/fleet.ts';
import type { Format } from '../firmware-sim/formats.ts';
import { METRICS } from '../firmware-sim/signals.ts';
import { systemClock } from '../shared/clock.ts';
import type { Reading, Summary } from '../shared/model.ts';
import { type BenchResult, isMain, memory, percentiles, printResult, stopwatch } from './lib.ts';

const DEVICES = 100;
const SAMPLE_EVERY = 32; // per-frame latency measured on every 32nd frame

export const WINDOWS: WindowSpec[] = [
  {
    name: 'all-10s',
    type: 'tumbling',
    size: 10_000,
    aggregates: ['count', 'min', 'max', 'mean', 'sum', 'stddev', 'first', 'last', 'p50', 'p95'],
    allowedLateness: 5_000,
    match: { device: '*', metric: '*' },
    lateEvents: 'drop',
  },
  {
    name: 'temp-60s-hop',
    type: 'hopping',
    size: 60_000,
    slide: 20_000,
    aggregates: ['count', 'min', 'max', 'mean', 'p95'],
    allowedLateness: 0,
    match: { metric: 'temperature' },
    lateEvents: 'drop',
  },
  {
    name: 'vib-count-50',
    type: 'count',
    count: 50,
    aggregates: ['count', 'mean', 'max', 'p50', 'p95'],
    allowedLateness: 0,
    match: { metric: 'vibration' },
    lateEvents: 'drop',
  },
];

export const RULES = [
  { name: 'overheat', kind: 'threshold', match: { metric: 'temperature' }, when: 'value > 80', for: '30s' },
  { name: 'vib-z', kind: 'zscore', match: { metric: 'vibration' }, window: 60, threshold: 4 },
  { name: 'current-spike', kind: 'spike', match: { metric: 'current' }, window: 30 },
  {
    name: 'hot-window',
    kind: 'threshold',
    on: { window: 'all-10s' },
    match: { metric: 'temperature' },
    when: 'p95 > 75',
  },
] as unknown as RuleSpec[];

interface Frames {
  format: FrameFormat;
  payloads: string[];
  /** number frames: device and metric come from the topic, the time is the arrival time (tick time) */
  ctx: { device?: string; metric?: string; arrivalTs: number }[];
  readings: number;
}

export function frames(format: Format, ticks: number): Frames {
  const fleet = new Fleet({
    seed: 'bench',
    devices: Array.from({ length: DEVICES }, (_, i) => `press-${i}`),
    metrics: [...METRICS],
    rateHz: 1,
    startTs: Date.UTC(2026, 0, 1),
    format,
    group: false,
    anomalies: ['spike', 'step', 'drift', 'stuck'],
    anomalyRate: 2,
    clockSkewMs: 500,
    malformed: 0,
    outOfOrder: 0.01,
    maxDelayMs: 3000,
    duplicates: 0,
  });
  const out: Frames = { format: format as FrameFormat, payloads: [], ctx: [], readings: 0 };
  const push = (f: ReturnType<Fleet['tick']>[number], arrivalTs: number) => {
    if (f.kind !== 'valid') return;
    out.payloads.push(String(f.payload));
    out.ctx.push(
      format === 'number' ? { device: f.device, metric: f.metric ?? undefined, arrivalTs } : { arrivalTs },
    );
    out.readings += f.readings.length;
  };
  for (let i = 0; i < ticks; i++) for (const f of fleet.tick(i)) push(f, fleet.trueTs(i));
  for (const f of fleet.flush()) push(f, fleet.trueTs(ticks));
  return out;
}

function gcIfExposed(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** The one tumbling window of issue 14's second target: decode + count/sum/min/max/mean, no rules. */
export const ONE_TUMBLING: WindowSpec[] = [
  { ...WINDOWS[0]!, name: 'one-10s', aggregates: ['count', 'sum', 'min', 'max', 'mean'] },
];

export function pipelineCase(
  fr: Frames,
  windowSpecs: WindowSpec[] = WINDOWS,
  ruleSpecs: RuleSpec[] = RULES,
  label = '',
) {
  let summaries = 0;
  let alerts = 0;
  const rules = new RuleEngine(
    ruleSpecs,
    { agentId: 'gw-bench', clock: systemClock },
    { alert: () => void alerts++ },
  );
  const windows = new WindowEngine(
    windowSpecs,
    { agentId: 'gw-bench', maxOutOfOrder: 5_000, idleTimeout: 30_000, clock: systemClock },
    {
      summary: (s: Summary) => {
        summaries++;
        rules.onSummary(s);
      },
      late: () => {},
    },
  );
  const decoder = createDecoder(fr.format);
  const lat: number[] = [];
  gcIfExposed();
  const sw = stopwatch();
  const n = fr.payloads.length;
  for (let i = 0; i < n; i++) {
    const sample = i % SAMPLE_EVERY === 0;
    const t0 = sample ? performance.now() : 0;
    const c = fr.ctx[i]!;
    const rs = decoder.decode(fr.payloads[i]!, {
      device: c.device,
      metric: c.metric,
      arrivalTs: c.arrivalTs,
    });
    // As agent/runtime/ingress.ts: one monotonic instant per frame, rules first, their score beside the
    // reading into the windows (issue 14: the bench fed windows then rules, without the score).
    const mono = systemClock.monotonic();
    for (const r of rs) windows.ingest(r, rules.onReading(r, mono), mono);
    if (sample) lat.push((performance.now() - t0) * 1000);
  }
  windows.tick();
  const t = sw.stop();
  const mem = memory();
  const p = percentiles(lat);
  return {
    row: {
      case: label || `agent pipeline, ${fr.format} frames`,
      readings: fr.readings,
      seconds: +t.seconds.toFixed(3),
      readingsPerSec: Math.round(fr.readings / t.seconds),
      readingsPerCpuSec: Math.round(fr.readings / t.cpuSeconds),
      'p50 µs': p.p50,
      'p95 µs': p.p95,
      'p99 µs': p.p99,
      heapMiB: mem.heapUsedMiB,
      rssMiB: mem.rssMiB,
      load1: t.load1,
    },
    summaries,
    alerts,
    state: windows.stats(),
  };
}

/**
 * The pipeline case MEASURED times over (fresh engines each time), the pass with the median readings per
 * CPU-second reported, every pass's figure beside it. Issue 14: on the shared machine one pass of the same
 * code moved from 308k to 521k between two runs a minute apart; the median of three moves less.
 */
const MEASURED = 3;
function medianCase(...args: Parameters<typeof pipelineCase>) {
  const passes = Array.from({ length: MEASURED }, () => pipelineCase(...args));
  const sorted = [...passes].sort((a, b) => a.row.readingsPerCpuSec - b.row.readingsPerCpuSec);
  const mid = sorted[MEASURED >> 1]!;
  return { ...mid, row: { ...mid.row, passes: passes.map((p) => p.row.readingsPerCpuSec).join(' / ') } };
}

function decodeFloor(fr: Frames) {
  gcIfExposed();
  const sw = stopwatch();
  let sink = 0;
  for (const p of fr.payloads) sink += (JSON.parse(p) as { value: number }).value;
  const t = sw.stop();
  if (Number.isNaN(sink)) console.log('');
  return {
    case: 'baseline: JSON.parse only (decode floor)',
    readings: fr.readings,
    seconds: +t.seconds.toFixed(3),
    readingsPerSec: Math.round(fr.readings / t.seconds),
    readingsPerCpuSec: Math.round(fr.readings / t.cpuSeconds),
    load1: t.load1,
  };
}

function decodeOnly(fr: Frames) {
  const decoder = createDecoder(fr.format);
  gcIfExposed();
  const sw = stopwatch();
  let k = 0;
  for (let i = 0; i < fr.payloads.length; i++) {
    const c = fr.ctx[i]!;
    k += decoder.decode(fr.payloads[i]!, {
      device: c.device,
      metric: c.metric,
      arrivalTs: c.arrivalTs,
    }).length;
  }
  const t = sw.stop();
  return {
    case: `decoder only, ${fr.format}`,
    readings: k,
    seconds: +t.seconds.toFixed(3),
    readingsPerSec: Math.round(k / t.seconds),
    readingsPerCpuSec: Math.round(k / t.cpuSeconds),
    load1: t.load1,
  };
}

/** The aggregation floor: what a minimal tumbling count/sum/min/max costs with a Map and no policy. */
function naiveAggregation(readings: Reading[]) {
  gcIfExposed();
  const sw = stopwatch();
  const open = new Map<string, { start: number; count: number; sum: number; min: number; max: number }>();
  let emitted = 0;
  for (const r of readings) {
    const start = r.ts - (r.ts % 10_000);
    const k = `${r.device}\u0000${r.metric}`;
    let a = open.get(k);
    if (a === undefined || a.start !== start) {
      if (a !== undefined) emitted++;
      a = { start, count: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
      open.set(k, a);
    }
    a.count++;
    a.sum += r.value;
    if (r.value < a.min) a.min = r.value;
    if (r.value > a.max) a.max = r.value;
  }
  const t = sw.stop();
  return {
    row: {
      case: 'baseline: naive Map tumbling count/sum/min/max (aggregation floor)',
      readings: readings.length,
      seconds: +t.seconds.toFixed(3),
      readingsPerSec: Math.round(readings.length / t.seconds),
      readingsPerCpuSec: Math.round(readings.length / t.cpuSeconds),
      load1: t.load1,
    },
    emitted,
  };
}

/** Windows only (no decode, no rules), over the same readings, so the aggregation ratio compares like with like. */
function windowsOnly(readings: Reading[], specs: WindowSpec[], label: string) {
  let summaries = 0;
  const windows = new WindowEngine(
    specs,
    { agentId: 'gw-bench', maxOutOfOrder: 5_000, idleTimeout: 30_000, clock: systemClock },
    { summary: () => void summaries++, late: () => {} },
  );
  gcIfExposed();
  const sw = stopwatch();
  for (const r of readings) windows.ingest(r);
  windows.tick();
  const t = sw.stop();
  return {
    case: label,
    readings: readings.length,
    seconds: +t.seconds.toFixed(3),
    readingsPerSec: Math.round(readings.length / t.seconds),
    readingsPerCpuSec: Math.round(readings.length / t.cpuSeconds),
    load1: t.load1,
    summaries,
  };
}

export async function benchPipeline(): Promise<BenchResult> {
  const ticks = Number(process.env.EDGEFLOW_BENCH_PIPELINE_TICKS ?? 500);
  const rows: Record<string, unknown>[] = [];
  const byFormat: Record<string, unknown> = {};
  const json = frames('json', ticks);
  // Warm-up (JIT), not measured: three whole json passes. Issue 14: a 20k-frame slice left the first
  // measured case still compiling (four passes in a row gave 141k, 253k, 323k, 348k readings/CPU-s), and
  // so did one pass (later in the day, eight passes: 311k, 430k, 524k, 555k, 560k, 560k, 529k, 556k; the
  // CPU of V8's compiler threads counts in process.cpuUsage). An agent runs for months: the steady state
  // is the figure that matters. The decode + 1 tumbling case warms up as well (its window spec gives the
  // accumulator another shape: measured cold, it gave 0.8M where passes 4-10 give 1.0-1.1M).
  for (let i = 0; i < 3; i++) pipelineCase(json, ONE_TUMBLING, []);
  for (let i = 0; i < 3; i++) pipelineCase(json);
  const number = frames('number', ticks);
  for (const fr of [json, frames('csv', ticks), number]) {
    const r = medianCase(fr);
    rows.push(r.row);
    byFormat[fr.format] = { summaries: r.summaries, alerts: r.alerts, windows: r.state };
  }
  // Issue 14: decode + one tumbling window (count/sum/min/max/mean), no rules, json and number frames.
  const oneJson = medianCase(json, ONE_TUMBLING, [], 'decode + 1 tumbling (count/sum/min/max/mean), json');
  const oneNumber = medianCase(
    number,
    ONE_TUMBLING,
    [],
    'decode + 1 tumbling (count/sum/min/max/mean), number',
  );
  rows.push(oneJson.row, oneNumber.row);
  rows.push(decodeOnly(json));
  rows.push(decodeFloor(json));
  const dec = createDecoder('json');
  const readings = json.payloads.flatMap((p) => dec.decode(p, { arrivalTs: 0 }));
  const naive = naiveAggregation(readings);
  const oneTumbling = windowsOnly(
    readings,
    [{ ...WINDOWS[0]!, aggregates: ['count', 'sum', 'min', 'max'] }],
    'WindowEngine only: 1 tumbling 10s, count/sum/min/max (same work as the floor)',
  );
  const allWindows = windowsOnly(readings, WINDOWS, 'WindowEngine only: the 3 specs (p50/p95 included)');
  rows.push(oneTumbling, allWindows, naive.row);
  const pipe = rows[0] as { readingsPerSec: number; readingsPerCpuSec: number; 'p99 µs': number };
  const floor = rows.find((r) => String(r.case).startsWith('baseline: JSON')) as {
    readingsPerCpuSec: number;
  };
  const numberPipe = rows[2] as { readingsPerCpuSec: number };
  // Issue 14 targets, per CPU-second (process.cpuUsage: robust on a shared, loaded machine).
  const targets = {
    jsonPipeline: { perCpuSec: pipe.readingsPerCpuSec, target: 500_000, ofJsonParse: 0.2 },
    decodeOneTumblingJson: { perCpuSec: oneJson.row.readingsPerCpuSec, target: 1_000_000, ofJsonParse: 0.5 },
    decodeOneTumblingNumber: { perCpuSec: oneNumber.row.readingsPerCpuSec, target: 1_500_000 },
    numberPipeline: { perCpuSec: numberPipe.readingsPerCpuSec },
    jsonPipelineP99us: { value: pipe['p99 µs'], target: 50 },
  };
  return {
    rows,
    frames: { devices: DEVICES, metrics: METRICS.length, ticks, readings: json.readings },
    windows: WINDOWS.map((w) => w.name),
    rules: RULES.map((r) => (r as { name: string }).name),
    outputs: byFormat,
    targets,
    ratios: {
      decodeOneTumblingJsonVsJsonParse: +(oneJson.row.readingsPerCpuSec / floor.readingsPerCpuSec).toFixed(3),
      pipelineJsonVsJsonParse: +(pipe.readingsPerCpuSec / floor.readingsPerCpuSec).toFixed(3),
      windowEngine1TumblingVsNaiveMap: +(oneTumbling.readingsPerCpuSec / naive.row.readingsPerCpuSec).toFixed(
        3,
      ),
    },
    notes: [
      `${json.readings} readings per format (${DEVICES} devices × ${METRICS.length} metrics × ${ticks} ticks at 1 Hz, 1 % out of order)`,
      `windows: ${WINDOWS.map((w) => `${w.name} (${w.type})`).join(', ')}; rules: ${RULES.map((r) => (r as { name: string; kind: string }).kind).join(', ')}`,
      `json pipeline / JSON.parse floor (per CPU-second): ${(pipe.readingsPerCpuSec / floor.readingsPerCpuSec).toFixed(3)}`,
      `decode + 1 tumbling, json / JSON.parse floor (per CPU-second): ${(oneJson.row.readingsPerCpuSec / floor.readingsPerCpuSec).toFixed(3)}`,
      `WindowEngine (1 tumbling, same aggregates) / naive Map (per CPU-second): ${(oneTumbling.readingsPerCpuSec / naive.row.readingsPerCpuSec).toFixed(3)}`,
      `latency percentiles: per frame (decode + windows + rules), every ${SAMPLE_EVERY}th frame timed with performance.now()`,
    ],
  };
}

if (isMain(import.meta.url)) printResult('pipeline', await benchPipeline());
