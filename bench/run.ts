// `npm run bench [-- name ...]`: runs the benchmarks in sequence (all, or the ones named), prints one
// table per bench and writes bench/results/latest.json (machine, load average, node version, results).
// Each bench is also runnable alone: `node --import tsx bench/<name>.ts`. Loopback only; the ones that
// need the test bed (Kafka, InfluxDB, Mosquitto) expect `npm run services -- up` to have been run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { type BenchResult, printResult } from './lib.ts';

type Loader = () => Promise<BenchResult | object | null>;

/** Optional benches are loaded dynamically: a missing file prints "not present" instead of failing. */
async function optional(file: string, fn: string): Promise<BenchResult | object | null> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(file.slice(2)))
      return null;
    throw e;
  }
  const f = mod[fn];
  if (typeof f !== 'function') throw new Error(`${file} does not export ${fn}()`);
  return (await f()) as BenchResult;
}

const BENCHES: Record<string, Loader> = {
  pipeline: async () => (await import('./pipeline.ts')).benchPipeline(),
  outbox: async () => (await import('./outbox.ts')).benchOutbox(),
  sdcard: () => optional('./sdcard.ts', 'benchSdCard'),
  footprint: async () => (await import('./footprint.ts')).benchFootprint(),
  collector: async () => (await import('./collector.ts')).benchCollector(),
  connections: async () => (await import('./connections.ts')).benchConnections(),
  nodered: async () => (await import('./nodered.ts')).benchNodeRed(),
  'hostile-agent': async () => (await import('./hostile-agent.ts')).benchHostileAgent(),
  nab: async () => (await import('./nab.ts')).benchNab(),
  'anomaly-keys': async () => (await import('./anomaly-keys.ts')).benchAnomalyKeys(),
  realtime: async () => (await import('./realtime.ts')).benchRealtime(),
  cluster: async () => (await import('./cluster.ts')).benchCluster(),
};

function machine() {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch {}
  return {
    cpus: cpus().length,
    model,
    memGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

// `npm run bench` is the everyday run, about 5 minutes on a 2-core machine: the shorter sizes below,
// each only where its variable is unset. `npm run bench -- --full` runs every bench at the size its own
// file defaults to (the runs BENCHMARKS.md's figures come from, ~8-9 minutes). Shorter runs keep every
// case and every same-run baseline; only the sample per case shrinks, so their spread is wider.
const QUICK: Record<string, string> = {
  EDGEFLOW_BENCH_SDCARD_SECONDS: '20', // 60: a per-hour figure from 20 s of writes
  EDGEFLOW_BENCH_FOOTPRINT_SECONDS: '20', // 30: the 10k-keys case's RSS is the max of its second half
  EDGEFLOW_BENCH_COLLECTOR_ITEMS: '100000', // 200,000 per case, both rounds kept
  EDGEFLOW_BENCH_KAFKAJS: '0', // the kafkajs ceiling (issue 18's comparison); @platformatic/kafka stays
  EDGEFLOW_BENCH_HOLD_S: '10', // 20: 1,000 agents held connected
  EDGEFLOW_BENCH_MQTT_N: '60000', // 200,000 readings per consumer and QoS
  EDGEFLOW_BENCH_REALTIME_SECONDS: '10', // 30 per configuration
  EDGEFLOW_BENCH_CLUSTER_ITEMS: '15000', // 30,000 through the two collectors
};
const full = process.argv.includes('--full');
if (!full) for (const [k, v] of Object.entries(QUICK)) process.env[k] ??= v;

const args = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = args.filter((a) => !(a in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown bench: ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})`);
  process.exit(2);
}
const selected = args.length > 0 ? args : Object.keys(BENCHES);
const startedAt = new Date().toISOString();
const m = machine();
console.log(
  `edgeflow bench: ${selected.join(', ')} (${full ? 'full sizes' : 'everyday sizes; --full for the published ones'})`,
);
console.log(
  `machine: ${m.cpus} × ${m.model}, ${m.memGiB} GiB, node ${m.node}, load average ${m.loadavg.join(' ')}`,
);

const results: Record<string, unknown> = {};
let failed = 0;
for (const name of selected) {
  const t0 = performance.now();
  const l0 = loadavg()[0]!;
  try {
    const res = await BENCHES[name]!();
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    if (res === null) {
      console.log(`\n## ${name}: not present (bench/${name}.ts does not exist yet), skipped`);
      results[name] = { present: false };
      continue;
    }
    const r = res as BenchResult;
    printResult(`${name} (${seconds} s)`, r);
    results[name] = { seconds, load1Before: Math.round(l0 * 100) / 100, ...r };
  } catch (e) {
    failed++;
    console.error(`\n## ${name}: FAILED: ${(e as Error).stack ?? e}`);
    results[name] = { error: (e as Error).message };
  }
}

const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
const out = join(dir, 'latest.json');
writeFileSync(
  out,
  `${JSON.stringify({ startedAt, finishedAt: new Date().toISOString(), machine: { ...m, loadavgEnd: loadavg().map((l) => Math.round(l * 100) / 100) }, command: `npm run bench${args.length || full ? ` -- ${[...(full ? ['--full'] : []), ...args].join(' ')}` : ''}`, results }, null, 2)}\n`,
);
console.log(`\nwrote ${out}`);
// Sockets of kafkajs/mqtt clients that were closed may keep the loop alive a little; don't wait.
process.exit(failed > 0 ? 1 : 0);
