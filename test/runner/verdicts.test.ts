// The test command counts every verdict (scripts/test.mjs, scripts/test-guard.mjs). The runner's
// --test-force-exit ends a file's process as soon as its last test is done, and Node dropped the result
// frames still queued on that process's stdout pipe (nodejs/node#64833): the summary counted fewer
// tests than ran, with exit 0. A failing test still failed its file (exit 1), but every count CI
// printed was a lower bound. The guard makes those writes blocking; this runs a file of many quick
// tests through Node's runner the way scripts/test.mjs does and requires every one in the count.
// Without the guard's line, pinned Node 24.21 counted 2,927-2,987 of 3,000 in three runs out of three.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { killAll, spawnTracked } from '../helpers/processes.ts';

const GUARD = new URL('../../scripts/test-guard.mjs', import.meta.url).pathname;
const TESTS = 3000;
const RUNS = 3;

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-verdicts-'));
after(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `file` under Node's runner with the guard and --test-force-exit; the TAP summary's counts. */
async function runFile(file: string): Promise<{ tests: number; pass: number; code: number | null }> {
  const env: NodeJS.ProcessEnv = { ...process.env, EDGEFLOW_TEST_FILE_TIMEOUT: '120' };
  // This file runs as a child of the suite's runner: without this, the nested runner would take itself
  // for a child and report to us in its binary protocol.
  delete env.NODE_TEST_CONTEXT;
  const p = spawnTracked(
    process.execPath,
    ['--import', GUARD, '--test', '--test-force-exit', '--test-reporter=tap', file],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  p.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const [code] = await once(p, 'exit');
  const count = (name: string) => Number(out.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? Number.NaN);
  return { tests: count('tests'), pass: count('pass'), code };
}

test(`every one of ${TESTS} quick tests is counted under --test-force-exit, ${RUNS} runs`, async () => {
  const file = join(dir, 'many.test.cjs');
  const lines = ["const { test } = require('node:test');"];
  for (let i = 1; i <= TESTS; i++) lines.push(`test('t${i}', () => {});`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  for (let run = 1; run <= RUNS; run++) {
    const r = await runFile(file);
    assert.deepEqual(r, { tests: TESTS, pass: TESTS, code: 0 }, `run ${run}`);
  }
});
