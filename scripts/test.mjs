#!/usr/bin/env node
// The one test command (README, .ci/run): brings up the real services the suite needs
// (scripts/services.sh up: Kafka, InfluxDB 1.x, VictoriaMetrics, Mosquitto, socat), then runs every
// `*.test.ts` with Node's own test runner and prints its summary.
//
//   npm test                          everything, services included
//   npm test -- agent/windows         only test files under that path (services still started)
//   npm run test:unit                 only unit tests beside the code, no services
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pinnedNode } from './runtime.mjs';

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
const res = spawnSync(
  node,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, EDGEFLOW_ROOT: root } },
);
process.exit(res.status ?? 1);
