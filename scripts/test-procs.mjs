// Finding and killing the processes a test run left behind (issue 12), for scripts/test.mjs and
// scripts/test-guard.mjs. Linux /proc only (the test bed's platform); elsewhere every list is empty and
// nothing is killed. A process is ours when it descends from a given pid or carries a marker in its
// environment (inherited through every spawn that passes `process.env` on, detached or not, and kept
// when its parent dies and it is re-parented): never a process this user did not start from the run.
import { readdirSync, readFileSync } from 'node:fs';

/** @typedef {{ pid: number, ppid: number, env: string[] | null, cmd: string }} Proc */

/** @returns {Proc[]} every process visible in /proc (environment null when unreadable). */
export function listProcesses() {
  let pids;
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  const out = [];
  for (const d of pids) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces: state ppid ...
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue; // exited, waiting for its parent to reap it: nothing to kill
      let env = null;
      try {
        env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      } catch {}
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(d), ppid: Number(ppid), env, cmd });
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

/**
 * Processes that descend from `root` or carry `marker` ("NAME=value") in their environment, `root` and
 * `exclude` themselves left out.
 * @param {Proc[]} procs @param {{ root?: number, marker?: string, exclude?: number[] }} by
 */
export function ours(procs, { root, marker, exclude = [] }) {
  const found = new Set();
  if (marker) for (const p of procs) if (p.env?.includes(marker)) found.add(p.pid);
  if (root !== undefined) {
    const children = new Map();
    for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
    const stack = [...(children.get(root) ?? [])];
    while (stack.length > 0) {
      const pid = stack.pop();
      found.add(pid);
      stack.push(...(children.get(pid) ?? []));
    }
  }
  for (const pid of [root, ...exclude]) found.delete(pid);
  return procs.filter((p) => found.has(p.pid));
}

/**
 * SIGKILLs what `select` finds (twice over, for anything forked meanwhile); returns one line per
 * process killed, `pid command`, the command shortened.
 * @param {(procs: Proc[]) => Proc[]} select
 */
export function killFound(select) {
  const lines = [];
  for (let pass = 0; pass < 2; pass++) {
    for (const p of select(listProcesses())) {
      try {
        process.kill(p.pid, 'SIGKILL');
        lines.push(`${p.pid} ${p.cmd.length > 140 ? `${p.cmd.slice(0, 139)}…` : p.cmd}`);
      } catch {
        // Exited already.
      }
    }
  }
  return lines;
}
