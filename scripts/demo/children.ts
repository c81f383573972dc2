// The demo's child processes: each in its own process group (so the terminal's Ctrl-C reaches only the
// demo, which then stops them in order), output to a log file under .demo/logs/, exit watched so the
// view can show a child that died together with its last log line. Each child's pid file (pidfiles.ts)
// lives as long as it does, so a demo that dies without stopping them lets the next one find them.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { removePidFile, writePidFile } from './pidfiles.ts';

export interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
  /** Set once the process has exited: exit code or signal name. */
  exited: string | null;
  /** True when the demo asked it to stop (an exit then is not a failure). */
  stopping: boolean;
  /** True when it exited before the demo asked it to stop. */
  died: boolean;
}

export class Children {
  readonly list: Child[] = [];

  /** `dir`: where the pid files go (`<dir>/pids/<name>.pid`). */
  constructor(private readonly dir: string) {}

  /**
   * Starts `argv` with stdout+stderr appended to `logFile` (or stdout piped, for the collector's
   * ready line). `detached` puts it in a new process group, which `stop` signals as a whole.
   */
  start(
    name: string,
    argv: string[],
    logFile: string,
    opts: { cwd: string; pipeStdout?: boolean; env?: NodeJS.ProcessEnv },
  ): Child {
    const fd = openSync(logFile, 'a');
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      detached: true,
      stdio: ['ignore', opts.pipeStdout ? 'pipe' : fd, fd],
    });
    closeSync(fd);
    const child: Child = { name, proc, logFile, exited: null, stopping: false, died: false };
    if (proc.pid !== undefined) writePidFile(this.dir, name, proc.pid);
    proc.on('exit', (code, signal) => {
      child.exited = signal ?? String(code);
      child.died ||= !child.stopping;
      // Its group may outlive it for a moment (stop() SIGKILLs the rest); the file goes with the leader.
      removePidFile(this.dir, name);
    });
    proc.on('error', (e) => {
      child.exited = `spawn error: ${e.message}`;
      child.died ||= !child.stopping;
    });
    this.list.push(child);
    return child;
  }

  /** SIGTERM to the child's process group, then wait; SIGKILL after `graceMs`. */
  async stop(child: Child, graceMs = 10_000): Promise<void> {
    child.stopping = true;
    if (child.exited !== null || child.proc.pid === undefined) return;
    const exited = once(child.proc, 'exit');
    signalGroup(child.proc.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child.proc.pid!, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    // Anything the child left in its group (none of ours fork, but be sure) goes too.
    signalGroup(child.proc.pid, 'SIGKILL');
  }

  /** Stops children in the given order (sources first, so the agent can drain, then the collector). */
  async stopAll(order: string[]): Promise<void> {
    const rank = (c: Child) => {
      const i = order.findIndex((p) => c.name.startsWith(p));
      return i < 0 ? order.length : i;
    };
    const sorted = [...this.list].sort((a, b) => rank(a) - rank(b));
    let i = 0;
    while (i < sorted.length) {
      // Children of equal rank stop together.
      const r = rank(sorted[i]!);
      const batch = sorted.filter((c) => rank(c) === r);
      await Promise.all(batch.map((c) => this.stop(c)));
      i += batch.length;
    }
  }

  /** Children that exited without being asked to. */
  dead(): Child[] {
    return this.list.filter((c) => c.died);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** The last non-empty line of a log file, shortened (for the view). */
export function lastLogLine(path: string, max = 160): string {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return '(no log)';
  }
  const lines = text.trimEnd().split('\n');
  let line = lines[lines.length - 1] ?? '';
  if (line === '') return '(its log is empty)';
  try {
    // pino JSON lines: show the message (and an error, if any) instead of the whole object.
    const o = JSON.parse(line) as { msg?: string; err?: { message?: string }; error?: string };
    line = [o.msg, o.err?.message ?? o.error].filter(Boolean).join(': ') || line;
  } catch {}
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** True when a process group still has a member. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
