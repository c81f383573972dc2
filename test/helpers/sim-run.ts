// Runs edgeflow-sim as a real process and returns its final report.
// runSim: through tsx on firmware-sim/main.ts, the report read from stdout (the JSON document it prints).
// runSimProcess: through the bin shim users run, the report from --report and the stderr log lines.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './agent-process.ts';

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

/** Spawns node with `argv`; resolves with its output once it exits 0, rejects (with stderr) otherwise. */
async function spawnSim(argv: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [code] = await once(proc, 'close');
  clearTimeout(timer);
  if (code !== 0) throw new Error(`edgeflow-sim exited with ${code}: ${stderr.slice(-2000)}`);
  return { stdout, stderr };
}

export async function runSim(args: string[], opts: { timeoutMs?: number } = {}): Promise<SimReport> {
  const { stdout } = await spawnSim(
    ['--import', 'tsx', join(ROOT, 'firmware-sim/main.ts'), ...args, '--log-level', 'warn'],
    opts.timeoutMs ?? 120_000,
  );
  const start = stdout.lastIndexOf('\n{');
  return JSON.parse(start >= 0 ? stdout.slice(start + 1) : stdout) as SimReport;
}

export async function runSimProcess(args: string[], reportFile: string, timeoutMs = 60_000): Promise<SimRun> {
  const { stderr } = await spawnSim(
    [join(ROOT, 'bin/edgeflow-sim.js'), ...args, '--report', reportFile],
    timeoutMs,
  );
  const logs = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { report: JSON.parse(readFileSync(reportFile, 'utf8')), logs };
}
