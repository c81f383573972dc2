#!/usr/bin/env node
// `npm run test:stress`: the durability tests with CPU hogs beside them (issue 12: at load 5-6 the crash
// test failed and then hung the suite). Starts N busy-loop processes (EDGEFLOW_STRESS_HOGS, default one
// per core), runs `scripts/test.mjs` on the durability test files (or the paths given), then kills the
// hogs. Each hog also ends by itself after EDGEFLOW_STRESS_MAX_S seconds (default 2400), so none outlives
// a run that was killed outright.
//
//   npm run test:stress                        crash, outage, overload, storage, e2e faults; N = cores
//   EDGEFLOW_STRESS_HOGS=4 npm run test:stress -- test/agent/crash
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const DURABILITY = [
  'test/agent/crash.test.ts',
  'test/agent/outage.test.ts',
  'test/agent/overload.test.ts',
  'test/agent/storage.test.ts',
  'test/e2e/faults.test.ts',
];
const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
const hogs = Math.min(Number(process.env.EDGEFLOW_STRESS_HOGS ?? availableParallelism()), 16);
const maxS = Number(process.env.EDGEFLOW_STRESS_MAX_S ?? 2400);

// A busy loop that checks the clock now and then: bounded even if nobody kills it.
const loop = `const end = Date.now() + ${maxS * 1000}; for (let i = 0; ; i++) if ((i & 0xfffff) === 0 && Date.now() > end) break;`;
const procs = [];
for (let i = 0; i < hogs; i++)
  procs.push(spawn(process.execPath, ['-e', loop], { stdio: 'ignore', detached: true }));
const killHogs = () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
};
process.on('exit', killHogs);

const t0 = Date.now();
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
console.error(
  `[stress] ${hogs} CPU hog(s) started (pids ${procs.map((p) => p.pid).join(' ')}); load ${load()}`,
);
const run = spawn(
  process.execPath,
  [join(root, 'scripts/test.mjs'), ...(files.length ? files : DURABILITY)],
  {
    stdio: 'inherit',
    cwd: root,
  },
);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => run.kill(sig));
// The 1-minute load average, sampled, so a run's report says how loaded the machine really was.
const samples = [];
const sampler = setInterval(() => samples.push(loadavg()[0]), 15_000);
const [code, signal] = await once(run, 'exit');
clearInterval(sampler);
const mean = samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : loadavg()[0];
console.error(
  `[stress] done in ${((Date.now() - t0) / 1000).toFixed(0)} s with ${hogs} hog(s), exit ${code ?? signal}; ` +
    `1-min load mean ${mean.toFixed(1)}, max ${Math.max(...samples, loadavg()[0]).toFixed(1)}; now ${load()}`,
);
killHogs();
process.exit(code ?? 1);
