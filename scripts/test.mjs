#!/usr/bin/env node
// The one test command (README, .ci/run): brings up the real services the suite needs
// (scripts/services.sh up: Kafka, InfluxDB 1.x, VictoriaMetrics, Mosquitto, socat), then runs every
// `*.test.ts` with Node's own test runner and prints its summary.
//
//   npm test                          everything, services included
//   npm test -- agent/windows         only test files under that path (services still started)
//   npm run test:unit                 only unit tests beside the code, no services
//
// No run hangs (issue 12): each test file has a time limit (EDGEFLOW_TEST_FILE_TIMEOUT seconds, default
// 900) and whatever a file leaves running is killed and named; scripts/test-guard.mjs does that inside
// each file's process, and this script is the backstop for a file process that cannot (a synchronous
// hang) and sweeps anything of the run still alive at the end.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pinnedNode } from './runtime.mjs';
import { killFound, listProcesses, ours } from './test-procs.mjs';

const root = new URL('..', import.meta.url).pathname;

// A fresh clone has no node_modules: install from the lockfile first, so `npm test` is the only command.
if (!existsSync(join(root, 'node_modules/.package-lock.json'))) {
  console.error('node_modules missing: installing from package-lock.json');
  const ci = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit', cwd: root });
  if (ci.status !== 0) process.exit(ci.status ?? 1);
}
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));
const UNIT_DIRS = ['shared', 'agent', 'collector', 'firmware-sim'];
const ALL_DIRS = [...UNIT_DIRS, 'test', 'deploy', 'bench'];

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

let files = (unitOnly ? UNIT_DIRS : ALL_DIRS).flatMap((d) => walk(join(root, d), []));
if (filters.length > 0)
  files = files.filter((f) => filters.some((flt) => f.startsWith(flt) || f.includes(flt)));
files.sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ') || '(all)'}`);
  process.exit(1);
}

const needsServices =
  !unitOnly && files.some((f) => f.startsWith('test/')) && process.env.EDGEFLOW_SERVICES !== 'external';
if (needsServices) {
  const up = spawnSync('bash', [join(root, 'scripts/services.sh'), 'up'], { stdio: 'inherit', cwd: root });
  if (up.status !== 0) {
    console.error('scripts/services.sh up failed; see .services/logs/');
    process.exit(up.status ?? 1);
  }
}

// Every test runs under the project's pinned Node 24 (scripts/runtime.mjs, issue 18), whichever Node
// started this script: `npm ci` by an older machine Node installs it, and no test is left on that one.
let node;
try {
  node = pinnedNode();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
// Integration tests share real servers and 2 cores: run files two at a time; unit files are fast.
const concurrency = process.env.EDGEFLOW_TEST_CONCURRENCY ?? '2';
// 900 s: above the slowest file's own test timeouts (crash.test.ts, 2 x 420 s) and its 440 s at load 25;
// a file that hangs costs at most that much of CI's 30 minutes, and says so.
const fileLimitS = Number(process.env.EDGEFLOW_TEST_FILE_TIMEOUT ?? 900);
// Every process of this run carries the mark (the guard adds one per file).
const runMark = `EDGEFLOW_TEST_RUN=${process.pid}-${randomBytes(4).toString('hex')}`;
const runner = spawn(
  node,
  [
    '--import',
    'tsx',
    '--import',
    join(root, 'scripts/test-guard.mjs'),
    // kafkajs (the tests read Kafka back with it) schedules `setTimeout(fn, throttledUntil - Date.now())`
    // with throttledUntil = -1 when nothing is throttled (network/requestQueue, unmaintained upstream);
    // Node 24 clamps that to 1 ms, as kafkajs means, and warns. The warning says nothing about our code.
    '--disable-warning=TimeoutNegativeWarning',
    '--test',
    `--test-concurrency=${concurrency}`,
    // A file whose tests are done exits even with a handle left open (the guard then kills its leftovers).
    '--test-force-exit',
    '--test-reporter=spec',
    ...files,
  ],
  {
    stdio: 'inherit',
    cwd: root,
    env: {
      ...process.env,
      EDGEFLOW_ROOT: root,
      EDGEFLOW_TEST_FILE_TIMEOUT: String(fileLimitS),
      EDGEFLOW_TEST_RUN: runMark.split('=')[1],
    },
  },
);
// A signal to this script (CI cancelling) goes on to the runner; the sweep below still runs.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => runner.kill(sig));

// Backstop: a test file's process still alive 60 s past its limit did not act on its own watchdog. File
// processes carry the runner's NODE_TEST_CONTEXT but not yet a file mark (the guard sets it after exec,
// for their children, whose mark begins with the file process's pid).
const FILE_MARK = 'EDGEFLOW_TEST_FILE_MARK=';
const reported = [];
const firstSeen = new Map();
const backstop =
  fileLimitS > 0
    ? setInterval(() => {
        for (const p of listProcesses()) {
          const env = p.env ?? [];
          if (!env.includes(runMark) || !env.some((e) => e.startsWith('NODE_TEST_CONTEXT=child'))) continue;
          if (env.some((e) => e.startsWith(FILE_MARK))) continue;
          const seen = firstSeen.get(p.pid) ?? Date.now();
          firstSeen.set(p.pid, seen);
          if (Date.now() - seen < (fileLimitS + 60) * 1000) continue;
          const file = relative(root, p.cmd.split(' ').find((a) => a.endsWith('.test.ts')) ?? p.cmd);
          const killed = killFound((all) => {
            const tree = new Set(ours(all, { root: p.pid }).map((q) => q.pid));
            return all.filter(
              (q) =>
                q.pid === p.pid ||
                tree.has(q.pid) ||
                q.env?.some((e) => e.startsWith(`${FILE_MARK}${p.pid}-`)),
            );
          });
          const line = `${file}: still running ${fileLimitS + 60} s after it started (EDGEFLOW_TEST_FILE_TIMEOUT=${fileLimitS}); killed:\n  ${killed.join('\n  ')}`;
          reported.push(`${file}: killed by the backstop after ${fileLimitS + 60} s`);
          console.error(`[test] ${line}`);
        }
      }, 5000)
    : null;

const [code, signal] = await once(runner, 'exit');
if (backstop) clearInterval(backstop);
// Anything of this run still alive now was left behind by a file process that could not clean up.
const leftovers = killFound((all) => ours(all, { marker: runMark, exclude: [process.pid] }));
if (leftovers.length > 0)
  reported.push(`left running after the runner ended, killed:\n  ${leftovers.join('\n  ')}`);
for (const line of reported) console.error(`[test] ${line}`);
process.exit(code ?? (signal ? 1 : 0));
