// Shared bits of the fleet control tests (issue 15): a real collector process with fleet control on,
// 1,000 agent credentials, signing keys, and small HTTP/CLI clients. Everything under one temp dir.

import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type CredentialFile, hashSecret, writeCredentialFile } from '../../shared/credentials.ts';
import { type CollectorProc, startCollector as startCollectorProcess } from '../e2e/kit.ts';
import { repoRoot } from '../helpers/services.ts';

export const ROOT = repoRoot();
export const CLI = [process.execPath, '--import', 'tsx', join(ROOT, 'collector/main.ts')];
const FAST_SCRYPT = { N: 1024, r: 8, p: 1, keylen: 32 };
const run = promisify(execFile);

export function simIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `sim-${String(i).padStart(4, '0')}`);
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface FleetBed {
  dir: string;
  fleetDir: string;
  keyFile: string;
  tokenFile: string;
  token: string;
  secret: string;
  publicKey: KeyObject;
  /** The public key (SPKI PEM) and the agents' secret as files, for processes (edgeflow-sim fleet-agents, agents). */
  publicKeyFile: string;
  secretFile: string;
  otherKeyPem: string;
  configPath: string;
  mqttPort: number;
  httpPort: number;
}

export async function makeBed(ids: readonly string[], extraFleetYaml = ''): Promise<FleetBed> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-fleet-'));
  const fleetDir = join(dir, 'fleet');
  mkdirSync(join(fleetDir, 'groups'), { recursive: true });
  const a = generateKeyPairSync('ed25519');
  const b = generateKeyPairSync('ed25519');
  const keyFile = join(dir, 'signing.pem');
  writeFileSync(keyFile, a.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const token = 'fleet-admin-token-for-tests';
  const tokenFile = join(dir, 'admin-token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  // One secret for every simulated agent (each entry its own salt): the sims need no secrets file.
  const secret = 'sim-fleet-secret';
  const secretFile = join(dir, 'agent-secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const publicKeyFile = join(dir, 'signing.pub.pem');
  writeFileSync(publicKeyFile, a.publicKey.export({ format: 'pem', type: 'spki' }));
  const file: CredentialFile = { version: 1, agents: {} };
  for (const id of ids) file.agents[id] = await hashSecret(secret, FAST_SCRYPT);
  const credentials = join(dir, 'agents.json');
  writeCredentialFile(credentials, file);
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const configPath = join(dir, 'collector.yaml');
  writeFileSync(
    configPath,
    `collector: { id: fleet-it, dataDir: ${join(dir, 'data')} }
mqtt: { listen: [tcp://127.0.0.1:${mqttPort}], credentials: ${credentials}, maxPendingConnections: 2000,
  authLimits: { failuresPerAddress: 100000 } } # every simulated agent connects from 127.0.0.1 at once
http: { listen: 127.0.0.1:${httpPort} }
fleet:
  dir: ${fleetDir}
  signingKeyFile: ${keyFile}
  adminTokenFile: ${tokenFile}
  debounce: 200ms
  rollout: { canaryShare: 0.05, maxFailureShare: 0.2 }
${extraFleetYaml}`,
  );
  return {
    dir,
    fleetDir,
    keyFile,
    tokenFile,
    token,
    secret,
    publicKey: a.publicKey,
    publicKeyFile,
    secretFile,
    otherKeyPem: b.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    configPath,
    mqttPort,
    httpPort,
  };
}

/** The collector as a process (test/e2e/kit.ts), logging beside its config. */
export type { CollectorProc };
export function startCollector(configPath: string): Promise<CollectorProc> {
  return startCollectorProcess(configPath, join(dirname(configPath), 'collector.log'));
}

export async function getJson<T = Record<string, unknown>>(url: string, token?: string): Promise<T> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The fleet CLI as a real process (asynchronously: the simulated agents live in this event loop). */
export async function fleetCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(CLI[0]!, [...CLI.slice(1), 'fleet', ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}

export interface FleetView {
  version: number;
  problems: string[];
  rollout: null | {
    id: string;
    version: number;
    kind: string;
    state: string;
    haltReason: string | null;
    stages: { agents: number; sent: boolean; name: string }[];
    progress: Record<
      'targeted' | 'applied' | 'rejected' | 'rolled_back' | 'pending' | 'sent' | 'waiting',
      number
    >;
  };
  agents: {
    id: string;
    online: boolean;
    report: { version: number; state: string; reason?: string } | null;
    desired: { version: number } | null;
  }[];
}
