// Runs edgeflow-sim as a real process (registered in processes.ts, so a failing test never leaves one).
// startSim: through tsx on firmware-sim/main.ts; `report` resolves with its final JSON report when it ends
// by itself (--count/--duration), `stop()` ends a run that has neither (SIGTERM: pending writes are
// confirmed first, so the report counts exactly what the receiver acknowledged).
// runSim: startSim to the end. runSimProcess: through the bin shim users run, with the stderr log lines.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './agent-process.ts';
import { spawnTracked, stopProcess } from './processes.ts';

export interface SimReport {
  readingsSent: number;
  framesSent: number;
  malformed: number;
  duplicates: number;
  outOfOrder: number;
  sent: { total: number; byDeviceMetric: Record<string, number> };
  [k: string]: unknown;
}

export interface SimRun {
  report: SimReport & { durationMs: number; targetRateHz: number; achievedRateHz: number; maxLagMs: number };
  logs: Record<string, unknown>[];
}

export interface SimProc {
  proc: ChildProcess;
  /** Resolves with the report once the simulator exits 0; rejects with its stderr otherwise. */
  report: Promise<SimReport>;
  /** SIGTERM, then the report. */
  stop(): Promise<SimReport>;
  /** Its stderr so far (log lines at --log-level warn and above), for a failing test's message. */
  stderr(): string;
}

/** Spawns node with `argv` (which must write `--report reportFile`); see SimProc. */
function spawnSim(argv: string[], reportFile: string): SimProc {
  const proc = spawnTracked(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const report = once(proc, 'close').then(([code, signal]) => {
    if (code !== 0) throw new Error(`edgeflow-sim exited with ${code ?? signal}: ${stderr.slice(-2000)}`);
    return JSON.parse(readFileSync(reportFile, 'utf8')) as SimReport;
  });
  report.catch(() => {}); // awaited by the caller; never an unhandled rejection when it is not
  return {
    proc,
    report,
    stderr: () => stderr,
    stop: async () => {
      await stopProcess(proc, 'SIGTERM');
      return report;
    },
  };
}

export function startSim(args: string[], reportFile?: string): SimProc {
  const dir = reportFile === undefined ? tempDir('edgeflow-sim-') : null;
  const file = reportFile ?? join(dir!, 'report.json');
  const sim = spawnSim(
    ['--import', 'tsx', join(ROOT, 'firmware-sim/main.ts'), ...args, '--log-level', 'warn', '--report', file],
    file,
  );
  if (dir) void sim.report.finally(() => rmSync(dir, { recursive: true, force: true })).catch(() => {});
  return sim;
}

/**
 * Runs the simulator to its own end (--count or --duration). The test's own timeout bounds the wait; a
 * `timeoutMs` (for benches, which have none) SIGKILLs it after that long.
 */
export async function runSim(args: string[], opts: { timeoutMs?: number } = {}): Promise<SimReport> {
  const sim = startSim(args);
  const timer =
    opts.timeoutMs === undefined ? null : setTimeout(() => sim.proc.kill('SIGKILL'), opts.timeoutMs);
  try {
    return await sim.report;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export async function runSimProcess(args: string[], reportFile: string, timeoutMs = 60_000): Promise<SimRun> {
  const sim = spawnSim([join(ROOT, 'bin/edgeflow-sim.js'), ...args, '--report', reportFile], reportFile);
  const timer = setTimeout(() => sim.proc.kill('SIGKILL'), timeoutMs);
  const report = await sim.report.finally(() => clearTimeout(timer));
  const logs = sim
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { report: report as SimRun['report'], logs };
}
