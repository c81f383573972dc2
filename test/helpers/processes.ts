// The one way tests start processes (issue 12): every child is registered here, in its own process group,
// so an `after()` hook (`killAll`) or, failing that, this process's exit SIGKILLs each group, whatever
// the test's outcome. A failing assertion then never leaves an agent, broker or simulator running, nor
// a handle that keeps the test file's process (and the suite) alive.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';

const live = new Set<ChildProcess>();

/** `spawn` with `detached: true` (its own process group, leader = the child), registered until it exits. */
export function spawnTracked(
  command: string,
  args: readonly string[],
  opts: SpawnOptions = {},
): ChildProcess {
  const p = spawn(command, args, { ...opts, detached: true });
  return track(p);
}

/** Registers a child started elsewhere; it is killed with the others. */
export function track(p: ChildProcess): ChildProcess {
  live.add(p);
  p.once('exit', () => live.delete(p));
  // A spawn error (ENOENT) also ends it; 'exit' may not follow.
  p.once('error', () => live.delete(p));
  return p;
}

export function running(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null && p.pid !== undefined;
}

/** Signals the child's process group (the child alone when it does not lead one). */
export function killGroup(p: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!running(p)) return;
  try {
    process.kill(-p.pid!, signal);
  } catch {
    try {
      p.kill(signal);
    } catch {}
  }
}

/** Signals `p` and resolves with its exit once it has gone (at once when it has already). */
export async function stopProcess(
  p: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (running(p)) {
    const exited = once(p, 'exit');
    p.kill(signal);
    await exited;
  }
  return { code: p.exitCode, signal: p.signalCode };
}

/** SIGKILLs every registered process group and waits for each child to exit (after() hooks). */
export async function killAll(): Promise<void> {
  const procs = [...live].filter(running);
  const exits = procs.map((p) => once(p, 'exit'));
  for (const p of procs) killGroup(p);
  await Promise.all(exits);
}

// Last resort when no hook ran (an uncaught error, the file's watchdog): synchronous, so it works in 'exit'.
process.on('exit', () => {
  for (const p of live) killGroup(p);
});
