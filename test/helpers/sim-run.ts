// Runs edgeflow-sim as a real process and returns its final report (the JSON document it prints).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
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

export async function runSim(args: string[], opts: { timeoutMs?: number } = {}): Promise<SimReport> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'firmware-sim/main.ts'), ...args, '--log-level', 'warn'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const [code] = await once(proc, 'exit');
  clearTimeout(timer);
  if (code !== 0) throw new Error(`edgeflow-sim exited with ${code}: ${err.slice(-2000)}`);
  const start = out.lastIndexOf('\n{');
  return JSON.parse(start >= 0 ? out.slice(start + 1) : out) as SimReport;
}
