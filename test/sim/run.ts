// Runs edgeflow-sim as a real process (the bin shim) and returns its report and stderr log lines.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

const BIN = new URL('../../bin/edgeflow-sim.js', import.meta.url).pathname;

export interface SimRun {
  report: {
    sent: { total: number; byDeviceMetric: Record<string, number> };
    readingsSent: number;
    framesSent: number;
    malformed: number;
    duplicates: number;
    outOfOrder: number;
    durationMs: number;
    targetRateHz: number;
    achievedRateHz: number;
    maxLagMs: number;
    [k: string]: unknown;
  };
  logs: Record<string, unknown>[];
}

export async function runSimProcess(args: string[], reportFile: string, timeoutMs = 60_000): Promise<SimRun> {
  const p = spawn(process.execPath, [BIN, ...args, '--report', reportFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const [code] = await once(p, 'close');
  clearTimeout(timer);
  if (code !== 0) throw new Error(`edgeflow-sim exited with ${code}: ${stderr.slice(-2000)}`);
  const logs = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { report: JSON.parse(readFileSync(reportFile, 'utf8')), logs };
}
