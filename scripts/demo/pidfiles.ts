// The demo's pid files (issue 12, item 7): `<dir>/pids/<name>.pid` holds a child's pid and the start
// time of that process, written when it starts and removed when it exits. A demo that died without
// stopping its children (SIGKILL, a crash; before issue 12 also a closed terminal) leaves them behind,
// and the next demo in the same directory stops those processes: only those whose pid *and* start time
// still match, so a pid the system has since given to another process is never signalled.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

const HAS_PROC = existsSync('/proc/self/stat');

/**
 * An identity for a live process that changes when its pid is reused: the start time (Linux: ticks since
 * boot from /proc/<pid>/stat; elsewhere `ps -o lstart=`), or null when no such process exists.
 */
export function processStart(pid: number): string | null {
  if (HAS_PROC) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (in parentheses, may hold spaces) begin at field 3 (state);
      // starttime is field 22. A zombie (state Z) has exited: nothing left to stop.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[0] === 'Z' ? null : (fields[19] ?? null);
    } catch {
      return null;
    }
  }
  try {
    const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return out === '' ? null : out;
  } catch {
    return null; // ps exits 1 when there is no such process
  }
}

export interface PidRecord {
  name: string;
  pid: number;
  start: string;
}

function pidDir(dir: string): string {
  return join(dir, 'pids');
}

/** Records a started child (its process group has the same id: the demo starts each detached). */
export function writePidFile(dir: string, name: string, pid: number): void {
  const start = processStart(pid);
  if (start === null) return; // exited already
  mkdirSync(pidDir(dir), { recursive: true });
  writeFileSync(join(pidDir(dir), `${name}.pid`), `${pid} ${start}\n`);
}

export function removePidFile(dir: string, name: string): void {
  rmSync(join(pidDir(dir), `${name}.pid`), { force: true });
}

/** The records under `dir`, malformed files skipped. */
export function readPidFiles(dir: string): PidRecord[] {
  let names: string[];
  try {
    names = readdirSync(pidDir(dir)).filter((n) => n.endsWith('.pid'));
  } catch {
    return [];
  }
  const out: PidRecord[] = [];
  for (const n of names) {
    const m = /^(\d+) (.+)$/.exec(readFileSync(join(pidDir(dir), n), 'utf8').trim());
    if (m) out.push({ name: n.slice(0, -'.pid'.length), pid: Number(m[1]), start: m[2]! });
  }
  return out;
}

/** True when the recorded process is still the one that was recorded. */
export function stillRunning(r: PidRecord): boolean {
  return processStart(r.pid) === r.start;
}

/** Signals the process group `pid` leads; the kernel never reuses a group id while its group has members. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone.
  }
}

/**
 * Stops the processes an earlier demo in `dir` left running (SIGTERM to each one's process group, SIGKILL
 * after `graceMs`), removes the pid files, and returns the records of those it stopped.
 */
export async function clearLeftovers(dir: string, graceMs = 10_000): Promise<PidRecord[]> {
  const left = readPidFiles(dir).filter(stillRunning);
  for (const r of left) signalGroup(r.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (left.some(stillRunning) && Date.now() < deadline) await delay(100);
  for (const r of left) signalGroup(r.pid, 'SIGKILL');
  rmSync(pidDir(dir), { recursive: true, force: true });
  return left;
}
