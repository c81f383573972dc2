// Runs a real edgeflow-agent process (node + tsx, as `bin/edgeflow-agent.js` does) for integration
// tests: writes its YAML config, waits until it reports its HTTP address, and can SIGTERM/SIGKILL it.
// Registered in processes.ts: `killAll()` (after() hooks) or the test process's exit ends it.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { spawnTracked } from './processes.ts';
import { waitFor } from './wait.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface AgentProcess {
  proc: ChildProcess;
  url: string;
  configPath: string;
  logs: string[];
  status(): Promise<Record<string, any>>;
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'edgeflow-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(dir: string, config: unknown, name = 'agent.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, stringify(config));
  return path;
}

/** Spawns an agent on `configPath`; resolves once its HTTP server is up. */
export async function startAgent(
  configPath: string,
  opts: { env?: NodeJS.ProcessEnv; bin?: string[] } = {},
): Promise<AgentProcess> {
  const argv = opts.bin ?? [process.execPath, '--import', 'tsx', join(ROOT, 'agent/main.ts')];
  const proc = spawnTracked(
    argv[0]!,
    [...argv.slice(1), 'run', '--config', configPath, '--log-level', 'info'],
    { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: string[] = [];
  let buf = '';
  let url: string | undefined;
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      logs.push(line);
      if (!url && line.includes('http listening')) {
        try {
          url = (JSON.parse(line) as { url: string }).url;
        } catch {}
      }
    }
  });
  proc.stdout!.resume();
  const exited = once(proc, 'exit');
  await Promise.race([
    // Generous: a tsx start takes ~2 s idle and over 10 s on a loaded 2-core machine (issue 12); a crash
    // ends the wait at once (below), and the test's own timeout bounds the rest.
    waitFor('agent HTTP address in its logs', () => url, { timeoutMs: 120_000 }),
    exited.then(([code]) => {
      throw new Error(`agent exited with ${code} before it was ready:\n${logs.slice(-20).join('\n')}`);
    }),
  ]).catch((err: unknown) => {
    // Not ready in time (a loaded machine): the caller never gets a handle to stop it, so stop it here,
    // or its pipes keep the test file from ending.
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    throw err;
  });
  const base = url!;
  return {
    proc,
    url: base,
    configPath,
    logs,
    status: async () => (await (await fetch(`${base}/status`)).json()) as Record<string, any>,
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const [code] = await exited;
      return code as number | null;
    },
  };
}

/** Reads one counter/gauge value from Prometheus text (sum over label sets matching `labels`). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([-+0-9.eE]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
