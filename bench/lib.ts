// Small helpers shared by the benchmarks: percentiles, CPU/memory sampling, load average. The machine
// these run on is often shared, so every measurement carries the CPU time of this process (user+sys)
// and the 1-minute load average next to the wall-clock figure.
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}

/** Nearest-rank percentiles of `xs` (sorted in place), rounded to 3 decimals. */
export function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN, n: 0 };
  xs.sort((a, b) => a - b);
  const at = (q: number) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]!;
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)), max: r(xs[xs.length - 1]!), n: xs.length };
}

export const load1 = (): number => Math.round(loadavg()[0]! * 100) / 100;

export const mib = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;

export function memory(): { rssMiB: number; heapUsedMiB: number } {
  const m = process.memoryUsage();
  return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed) };
}

/** Wall clock and CPU time (user+sys of this process) between `start()` and `stop()`. */
export function stopwatch() {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const l0 = loadavg()[0]!;
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const cpuSeconds = (c.user + c.system) / 1e6;
      return { seconds, cpuSeconds, load1: Math.round(((l0 + loadavg()[0]!) / 2) * 100) / 100 };
    },
  };
}

/** Samples RSS every `ms` until stopped; returns the peak. */
export function rssPeak(ms = 100) {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, ms);
  t.unref();
  return {
    stop(): number {
      clearInterval(t);
      return mib(Math.max(peak, process.memoryUsage().rss));
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until true or the deadline passes (then throws with `what`). */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string, every = 20) {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** True when the module at `url` is the script node was started with (bench runnable alone). */
export function isMain(url: string): boolean {
  return url === pathToFileURL(process.argv[1] ?? '').href;
}

/** What every bench returns: rows for the table plus anything else worth keeping in latest.json. */
export interface BenchResult {
  rows: Record<string, unknown>[];
  notes?: string[];
  [k: string]: unknown;
}

export function printResult(name: string, res: BenchResult): void {
  console.log(`\n## ${name}  (load average now ${load1()})`);
  if (Array.isArray(res.rows)) console.table(res.rows);
  else console.log(JSON.stringify(res, null, 2)); // a bench that returns no rows: show what it returned
  for (const n of res.notes ?? []) console.log(`  - ${n}`);
}
