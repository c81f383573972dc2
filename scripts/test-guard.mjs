// Preloaded (--import) by scripts/test.mjs into the test runner, which passes it on to every test
// file's process; it acts only there (the runner marks those NODE_TEST_CONTEXT=child…). Issue 12: a
// crash test that failed at load 5-6 kept its process alive with open handles and hung the suite 27 min.
// - Per-file time limit (EDGEFLOW_TEST_FILE_TIMEOUT seconds, default 900): past it the file's process
//   says so on stderr, kills what the file started and exits 1, which the runner reports as a failure.
// - On exit, pass or fail: whatever the file started and left running (its descendants, and anything
//   carrying its marker in the environment: detached children whose parent is gone) is SIGKILLed and
//   named on stderr. The runner's --test-force-exit makes the process exit once its tests are done,
//   even with handles left open.
import { randomBytes } from 'node:crypto';
import { relative } from 'node:path';
import { killFound, ours } from './test-procs.mjs';

const MARK = 'EDGEFLOW_TEST_FILE_MARK';

if (process.env.NODE_TEST_CONTEXT?.startsWith('child') && process.argv[1]) {
  // A file's verdicts reach the runner as frames on this process's stdout, a pipe Node writes
  // asynchronously on Linux; --test-force-exit calls process.exit() once the last test ends, and frames
  // still queued were dropped: the runner counted fewer tests than ran and said nothing (a unit run
  // lost the last 5-10 tests of a file twice; nodejs/node#64833, fix #64875 not released). Blocking
  // writes put every frame in the pipe before the test after it runs. The runner keeps reading
  // (test/runner/verdicts.test.ts).
  process.stdout._handle?.setBlocking?.(true);
  const root = new URL('..', import.meta.url).pathname;
  const file = relative(root, process.argv[1]);
  const limitS = Number(process.env.EDGEFLOW_TEST_FILE_TIMEOUT ?? 900);
  // Inherited by everything the file spawns with process.env (all our helpers do).
  const marker = `${MARK}=${process.pid}-${randomBytes(4).toString('hex')}`;
  process.env[MARK] = marker.slice(MARK.length + 1);
  const say = (line) => process.stderr.write(`[test-guard] ${file}: ${line}\n`);
  // tsx's esbuild service is the runner's tooling, a child of every file process: killed, not reported.
  const tooling = (line) => / esbuild --service=/.test(line) || /\/esbuild --service=/.test(line);
  const sweep = () =>
    killFound((procs) => ours(procs, { root: process.pid, marker })).filter((l) => !tooling(l));

  let timedOut = false;
  process.on('exit', () => {
    const killed = sweep();
    if (killed.length > 0 && !timedOut)
      say(`left ${killed.length} process(es) running; killed:\n  ${killed.join('\n  ')}`);
  });
  if (limitS > 0) {
    setTimeout(() => {
      timedOut = true;
      const killed = sweep();
      say(
        `TIMED OUT after ${limitS} s (EDGEFLOW_TEST_FILE_TIMEOUT); ` +
          (killed.length > 0
            ? `killed what it started:\n  ${killed.join('\n  ')}`
            : 'it had started nothing'),
      );
      process.exit(1);
    }, limitS * 1000).unref();
  }
}
