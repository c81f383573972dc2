// The on-disk side of an agent update (issue 16): staging a verified executable, swapping it in
// atomically, the trial of its first start, commit and rollback. Every step is a rename or a link on
// the binary's own directory followed by an fsync of that directory, and the step reached is written to
// a small state file beside the binary, so power loss between any two steps leaves either the old or the
// new executable at the binary's path, never a partial one (test: agent/update/install.test.ts kills a
// process with SIGKILL after each step).
//
// Files, for binary B (e.g. /usr/local/lib/edgeflow/edgeflow-agent):
//   B              the executable systemd starts
//   B.new          the verified new executable, staged (copied from dataDir: it may be another fs)
//   B.prev         the previous executable, the fallback (a hard link made before the swap)
//   B.update       state, `key=value` lines so that the ExecStartPre guard (deploy/systemd/
//                  edgeflow-agent-update-guard, plain sh) can read it before any of our code runs
//
// Steps of install(): copy → staged → prev → swap → trial, then the process exits with
// EXIT_RESTART_FOR_UPDATE and the service manager starts B (the new one). recover() (agent start) and
// the guard (every start, even when the new binary cannot run at all) finish a staged swap and count
// trial starts; a trial that does not confirm health within the deadline, or that starts more than
// MAX_TRIAL_STARTS times without confirming, is rolled back: rename(B.prev, B).
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';

/** Exit code that asks the service manager for a restart into the swapped binary (EX_TEMPFAIL). */
export const EXIT_RESTART_FOR_UPDATE = 75;
/** Starts of a trial binary before it must have confirmed health; more and it is rolled back. */
export const MAX_TRIAL_STARTS = 2;

export const INSTALL_STEPS = ['copy', 'staged', 'prev', 'swap', 'trial'] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

export type DiskPhase = 'staged' | 'trial' | 'committed' | 'rolled_back';

export interface DiskState {
  phase: DiskPhase;
  from: string;
  to: string;
  /** Starts counted by the ExecStartPre guard while in trial. */
  boots: number;
  /** Starts counted by the agent itself while in trial (when there is no guard). */
  starts: number;
  reason?: string;
  at: number;
}

export interface SwapPaths {
  binary: string;
  next: string;
  nextTmp: string;
  prev: string;
  prevTmp: string;
  state: string;
}

export function swapPaths(binary: string): SwapPaths {
  return {
    binary,
    next: `${binary}.new`,
    nextTmp: `${binary}.new.tmp`,
    prev: `${binary}.prev`,
    prevTmp: `${binary}.prev.tmp`,
    state: `${binary}.update`,
  };
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const fsyncDir = (file: string) => fsyncPath(dirname(file));

export function readDiskState(p: SwapPaths): DiskState | null {
  let text: string;
  try {
    text = readFileSync(p.state, 'utf8');
  } catch {
    return null;
  }
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1));
  }
  const phase = kv.get('phase') as DiskPhase | undefined;
  if (!phase || !['staged', 'trial', 'committed', 'rolled_back'].includes(phase)) return null;
  return {
    phase,
    from: kv.get('from') ?? '',
    to: kv.get('to') ?? '',
    boots: Number(kv.get('boots') ?? 0) || 0,
    starts: Number(kv.get('starts') ?? 0) || 0,
    reason: kv.get('reason') || undefined,
    at: Number(kv.get('at') ?? 0) || 0,
  };
}

/** Atomic: temp file, fsync, rename, fsync the directory. The same format the guard writes. */
export function writeDiskState(p: SwapPaths, s: DiskState): void {
  const clean = (v: string) => v.replace(/[\r\n]/g, ' ').slice(0, 512);
  const body = [
    `phase=${s.phase}`,
    `from=${clean(s.from)}`,
    `to=${clean(s.to)}`,
    `boots=${s.boots}`,
    `starts=${s.starts}`,
    `reason=${clean(s.reason ?? '')}`,
    `at=${s.at}`,
    '',
  ].join('\n');
  const tmp = `${p.state}.tmp`;
  writeFileSync(tmp, body);
  fsyncPath(tmp);
  renameSync(tmp, p.state);
  fsyncDir(p.state);
}

function modeOf(file: string): number {
  try {
    return (statSync(file).mode & 0o7777) | 0o500;
  } catch {
    return 0o755;
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/** B.prev := B, atomically (a link under a temp name, then rename over the old fallback). */
function linkPrev(p: SwapPaths): void {
  rmSync(p.prevTmp, { force: true });
  // Already a link to B (a crash after this step): rename() between two links of one file does nothing
  // and would leave the temp name behind.
  if (sameFile(p.binary, p.prev)) return;
  linkSync(p.binary, p.prevTmp);
  renameSync(p.prevTmp, p.prev);
  fsyncDir(p.prev);
}

export interface InstallOptions {
  from: string;
  to: string;
  now?: () => number;
  /** Test hook: called after each step is durable (install.test.ts SIGKILLs itself here). */
  afterStep?: (step: InstallStep) => void;
}

/**
 * Installs a verified executable over `p.binary`, keeping the running one as B.prev, and leaves the
 * state in `trial`. The caller then exits with EXIT_RESTART_FOR_UPDATE.
 */
export function install(p: SwapPaths, artifact: string, o: InstallOptions): void {
  const now = o.now ?? Date.now;
  // copy: the artifact may be on another file system (dataDir); B.new must be on B's for the rename.
  rmSync(p.nextTmp, { force: true });
  copyFileSync(artifact, p.nextTmp);
  // The download is a plain file (0644): give it the running executable's mode, or 0755.
  chmodSync(p.nextTmp, modeOf(p.binary));
  fsyncPath(p.nextTmp);
  renameSync(p.nextTmp, p.next);
  fsyncDir(p.next);
  o.afterStep?.('copy');
  writeDiskState(p, { phase: 'staged', from: o.from, to: o.to, boots: 0, starts: 0, at: now() });
  o.afterStep?.('staged');
  finishStaged(p, { from: o.from, to: o.to, now }, o.afterStep);
}

/** staged → trial: the fallback link (again: a crash may have left an older B.prev), then the swap. */
function finishStaged(
  p: SwapPaths,
  s: { from: string; to: string; now: () => number },
  afterStep?: (step: InstallStep) => void,
): void {
  // B.new present means B is still the running (old) executable: make it the fallback, then swap.
  // B.new absent means the swap rename already happened.
  if (existsSync(p.next)) {
    linkPrev(p);
    afterStep?.('prev');
    renameSync(p.next, p.binary);
    fsyncDir(p.binary);
    afterStep?.('swap');
  }
  writeDiskState(p, { phase: 'trial', from: s.from, to: s.to, boots: 0, starts: 0, at: s.now() });
  afterStep?.('trial');
}

/** Puts B.prev back at B (atomic rename) and records why. */
export function rollback(p: SwapPaths, reason: string, now: () => number = Date.now): DiskState {
  const s = readDiskState(p);
  // B.prev exists from the swap until a rollback consumes it; if it is gone a rollback already ran.
  if (existsSync(p.prev)) {
    renameSync(p.prev, p.binary);
    fsyncDir(p.binary);
  }
  const next: DiskState = {
    phase: 'rolled_back',
    from: s?.from ?? '',
    to: s?.to ?? '',
    boots: 0,
    starts: 0,
    reason,
    at: now(),
  };
  writeDiskState(p, next);
  return next;
}

export function commit(p: SwapPaths, now: () => number = Date.now): DiskState | null {
  const s = readDiskState(p);
  if (s?.phase !== 'trial') return s;
  const next: DiskState = { ...s, phase: 'committed', boots: 0, starts: 0, reason: undefined, at: now() };
  writeDiskState(p, next);
  return next;
}

export type Recovered =
  | { action: 'none'; state: DiskState | null }
  | { action: 'trial'; state: DiskState }
  /** The running process is the binary that was just rolled back from: restart into B. */
  | { action: 'restart'; state: DiskState };

/**
 * At agent start (the guard does the same before it, when systemd runs it): finish a staged swap, count
 * the start of a trial binary, roll back one that started too often without confirming. `running` is
 * the version of this process.
 */
export function recover(p: SwapPaths, running: string, now: () => number = Date.now): Recovered {
  rmSync(p.nextTmp, { force: true });
  rmSync(p.prevTmp, { force: true });
  let s = readDiskState(p);
  if (!s) {
    rmSync(p.next, { force: true });
    return { action: 'none', state: null };
  }
  if (s.phase === 'staged') {
    // Power was lost mid-install: finish the swap, restart into it.
    finishStaged(p, { from: s.from, to: s.to, now });
    return { action: 'restart', state: readDiskState(p)! };
  }
  if (s.phase !== 'trial') {
    rmSync(p.next, { force: true });
    return { action: 'none', state: s };
  }
  if (running !== s.to) {
    // B is the new binary but this process is not (started from elsewhere, or an old process): leave
    // the trial to B's own start.
    return { action: 'none', state: s };
  }
  s = { ...s, starts: s.starts + 1 };
  if (s.starts > MAX_TRIAL_STARTS || s.boots > MAX_TRIAL_STARTS) {
    const r = rollback(
      p,
      `${s.to} started ${Math.max(s.starts, s.boots) - 1} times without confirming health`,
      now,
    );
    return { action: 'restart', state: r };
  }
  writeDiskState(p, s);
  return { action: 'trial', state: s };
}
