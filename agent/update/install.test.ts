// The swap survives power loss at every step (issue 16): a real process installs a new executable and
// is killed with SIGKILL right after each step; then the ExecStartPre guard (the shipped sh script) or
// the agent's own recover() runs, and the binary at the service's path must start and be A or B, never
// a partial file. Plus the trial: a new binary that keeps failing to confirm is rolled back by the guard.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  commit,
  INSTALL_STEPS,
  MAX_TRIAL_STARTS,
  readDiskState,
  recover,
  rollback,
  swapPaths,
} from './install.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUARD = join(ROOT, 'deploy/systemd/edgeflow-agent-update-guard');
const CHILD = join(ROOT, 'test/update/install-child.ts');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A directory with B = executable printing A, and an artifact printing B (a few MB, like a binary). */
function setup(): { dir: string; binary: string; artifact: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-install-'));
  dirs.push(dir);
  const pad = `# ${'x'.repeat(4 * 1024 * 1024)}\n`;
  const binary = join(dir, 'edgeflow-agent');
  writeFileSync(binary, `#!/bin/sh\necho A\nexit 0\n${pad}`);
  chmodSync(binary, 0o755);
  const artifact = join(dir, 'artifact');
  // A download is a plain 0644 file: the swap must make it executable.
  writeFileSync(artifact, `#!/bin/sh\necho B\nexit 0\n${pad}`);
  chmodSync(artifact, 0o644);
  return { dir, binary, artifact };
}

/** Starts the binary as the service would: prints A or B when it is a whole executable. */
function startBinary(binary: string): string {
  const r = spawnSync(binary, [], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${binary} must start: ${r.stderr} ${r.error?.message ?? ''}`);
  return r.stdout.trim();
}

function guard(binary: string): void {
  const r = spawnSync('sh', [GUARD, binary], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

// After a kill at `step`, which binary must come up (the trial of B, or still A)?
const EXPECTED: Record<(typeof INSTALL_STEPS)[number], string> = {
  copy: 'A', // staged file not yet announced: discarded
  staged: 'B', // the guard finishes the swap
  prev: 'B',
  swap: 'B',
  trial: 'B',
};

for (const recoverer of ['guard', 'agent'] as const) {
  for (const step of INSTALL_STEPS) {
    test(`SIGKILL after "${step}", then the ${recoverer} recovers: a bootable ${EXPECTED[step]}`, () => {
      const { binary, artifact } = setup();
      const p = swapPaths(binary);
      const child = spawnSync(process.execPath, ['--import', 'tsx', CHILD, binary, artifact, step], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      assert.equal(child.signal, 'SIGKILL', `child must die at ${step}: ${child.stdout} ${child.stderr}`);
      // Right after the kill, before any recovery: the service's path holds a whole A or B.
      assert.match(startBinary(binary), /^[AB]$/);
      if (recoverer === 'guard') guard(binary);
      // staged: the agent finishes the swap and asks for a restart; the restart is the trial start.
      else if (recover(p, 'B').action === 'restart') recover(p, 'B');
      assert.equal(startBinary(binary), EXPECTED[step]);
      assert.ok(!existsSync(p.nextTmp) && !existsSync(p.prevTmp), 'temp files cleaned');
      const s = readDiskState(p);
      if (EXPECTED[step] === 'B') {
        assert.equal(s?.phase, 'trial');
        assert.equal(startBinary(p.prev), 'A', 'the previous binary is the fallback');
        assert.equal(recoverer === 'guard' ? s?.boots : s?.starts, 1, 'this start counted');
        // The trial binary confirms: committed, fallback kept.
        commit(p);
        assert.equal(readDiskState(p)?.phase, 'committed');
        guard(binary);
        assert.equal(startBinary(binary), 'B');
      } else {
        assert.ok(s === null || s.phase !== 'trial');
        assert.ok(!existsSync(p.next), 'an unannounced staged file is removed');
      }
    });
  }
}

test('a trial binary that never confirms is rolled back by the guard after MAX_TRIAL_STARTS starts', () => {
  const { binary, artifact } = setup();
  const p = swapPaths(binary);
  const child = spawnSync(process.execPath, ['--import', 'tsx', CHILD, binary, artifact, 'none'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.notEqual(child.status, 0); // 'none' is not a step: the child refuses before touching files
  spawnSync(process.execPath, ['--import', 'tsx', CHILD, binary, artifact, 'trial'], { cwd: ROOT });
  for (let i = 1; i <= MAX_TRIAL_STARTS; i++) {
    guard(binary);
    assert.equal(startBinary(binary), 'B', `trial start ${i}`);
    assert.equal(readDiskState(p)?.boots, i);
  }
  guard(binary); // one start too many without a commit
  assert.equal(startBinary(binary), 'A');
  const s = readDiskState(p);
  assert.equal(s?.phase, 'rolled_back');
  assert.match(s?.reason ?? '', /B started 2 times without confirming health/);
  // Stays rolled back on later starts.
  guard(binary);
  assert.equal(startBinary(binary), 'A');
  assert.equal(readDiskState(p)?.phase, 'rolled_back');
});

test('the agent rolls back by itself (no guard) and a rollback survives a repeat after power loss', () => {
  const { binary, artifact } = setup();
  const p = swapPaths(binary);
  spawnSync(process.execPath, ['--import', 'tsx', CHILD, binary, artifact, 'trial'], { cwd: ROOT });
  for (let i = 1; i <= MAX_TRIAL_STARTS; i++) assert.equal(recover(p, 'B').action, 'trial');
  const r = recover(p, 'B');
  assert.equal(r.action, 'restart');
  assert.equal(r.state.phase, 'rolled_back');
  assert.equal(startBinary(binary), 'A');
  // A second rollback (the first one's state write lost) finds B.prev gone and keeps A.
  rollback(p, 'again');
  assert.equal(startBinary(binary), 'A');
  // The old binary starting is not a trial.
  assert.equal(recover(p, 'A').action, 'none');
  assert.equal(readFileSync(binary, 'utf8').split('\n')[1], 'echo A');
});
