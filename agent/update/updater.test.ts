// The updater's trial in-process (the end-to-end version with real executables is test/update/ota.test.ts):
// a new binary that becomes healthy commits; one that does not within update.healthDeadline is rolled
// back with the missing parts as the reason and asks for a restart (exit 75); the previous binary then
// reports `rolled_back` for that version and does not try it again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { nullLogger } from '../../shared/log.ts';
import type { AgentHealth } from '../runtime/status.ts';
import { type UpdateConfig, updateSchema } from './config.ts';
import { EXIT_RESTART_FOR_UPDATE, install, readDiskState, swapPaths } from './install.ts';
import { healthOf, Updater } from './updater.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** B installed over A, state `trial`, as after the swap and restart. */
function installed(): { dir: string; binary: string; cfg: UpdateConfig } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-updater-'));
  dirs.push(dir);
  const binary = join(dir, 'edgeflow-agent');
  writeFileSync(binary, '#!/bin/sh\necho A\n');
  chmodSync(binary, 0o755);
  writeFileSync(join(dir, 'b'), '#!/bin/sh\necho B\n');
  install(swapPaths(binary), join(dir, 'b'), { from: 'A', to: 'B' });
  const cfg = updateSchema.parse({
    publicKeyFile: join(dir, 'unused.pub'),
    url: 'http://127.0.0.1:9',
    version: 'B',
    healthDeadline: '400ms',
    binary,
  });
  return { dir, binary, cfg };
}

function updater(cfg: UpdateConfig, version: string, dir: string, health: () => boolean) {
  const restarts: number[] = [];
  let restarted: () => void = () => {};
  const restartedP = new Promise<void>((r) => {
    restarted = r;
  });
  const u = new Updater(cfg, {
    log: nullLogger(),
    version,
    dataDir: join(dir, 'data'),
    health: () => healthOf(health() ? okHealth : downHealth),
    restart: (code) => {
      restarts.push(code);
      restarted();
    },
    healthPollMs: 20,
  });
  return { u, restarts, restartedP };
}

const running = { running: true, sourcesTotal: 1, clockSynced: true, checkpointFailing: 0 };
const okHealth: AgentHealth = {
  ...running,
  sourcesOpen: 1,
  sources: [{ name: 'floor', type: 'mqtt', state: 'up', open: true }],
  uplinkConnected: true,
  uplinkLastError: null,
  lastCheckpointAt: 1,
};
const downHealth: AgentHealth = {
  ...running,
  sourcesOpen: 0,
  sources: [{ name: 'floor', type: 'mqtt', state: 'down', open: false }],
  uplinkConnected: false,
  uplinkLastError: 'connect ECONNREFUSED 127.0.0.1:1',
  lastCheckpointAt: null,
};

test('healthy within the deadline: committed, the new binary stays', async () => {
  const { dir, binary, cfg } = installed();
  let healthy = false;
  const { u, restarts } = updater(cfg, 'B', dir, () => healthy);
  assert.equal(u.boot(), true);
  assert.equal(u.status().state, 'trial');
  healthy = true;
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      if (u.status().state === 'committed') {
        clearInterval(t);
        resolve();
      }
    }, 10);
  });
  u.stop();
  assert.deepEqual(restarts, []);
  assert.equal(readDiskState(swapPaths(binary))?.phase, 'committed');
  assert.match(readFileSync(binary, 'utf8'), /echo B/);
});

test('not healthy by the deadline: rolled back with the reason, exit 75; A then reports it and stays', async () => {
  const { dir, binary, cfg } = installed();
  const { u, restarts, restartedP } = updater(cfg, 'B', dir, () => false);
  assert.equal(u.boot(), true);
  await restartedP;
  u.stop();
  assert.deepEqual(restarts, [EXIT_RESTART_FOR_UPDATE]);
  assert.match(readFileSync(binary, 'utf8'), /echo A/);
  const s = readDiskState(swapPaths(binary));
  assert.equal(s?.phase, 'rolled_back');
  assert.equal(
    s?.reason,
    'not healthy within 0.4s: source floor not open, uplink not connected, no checkpoint written',
  );
  // The previous binary starts: it reports the rollback and does not download B again.
  const a = updater(cfg, 'A', dir, () => true);
  assert.equal(a.u.boot(), true);
  a.u.start();
  assert.equal(a.u.status().state, 'rolled_back');
  assert.equal(a.u.status().wanted, 'B');
  assert.match(a.u.status().reason ?? '', /not healthy within/);
  a.u.stop();
  assert.deepEqual(a.restarts, []);
});

test('a new binary that hangs its event loop in trial is SIGKILLed by the watchdog thread; the third such start rolls back', async () => {
  const { dir, binary, cfg } = installed();
  // The process a service manager would start: boots the updater (trial), then blocks its main thread.
  const child = `
    import { nullLogger } from ${JSON.stringify(join(import.meta.dirname, '../../shared/log.ts'))};
    import { Updater } from ${JSON.stringify(join(import.meta.dirname, 'updater.ts'))};
    const u = new Updater(${JSON.stringify(cfg)}, {
      log: nullLogger(), version: 'B', dataDir: ${JSON.stringify(join(dir, 'data'))},
      health: () => ({ ok: false, missing: ['hung'] }),
      restart: (code) => process.exit(code),
    });
    if (u.boot()) {
      process.stdout.write('trial\\n');
      for (;;) {} // hung: no timer of the main thread runs again
    }`;
  const start = () =>
    new Promise<{ code: number | null; signal: string | null; out: string; ms: number }>((resolve) => {
      const t0 = performance.now();
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      // Without a watchdog the child would hang for good: ended here so the assertion below fails instead.
      const stuck = setTimeout(() => p.kill('SIGTERM'), 120_000);
      p.once('exit', (code, signal) => {
        clearTimeout(stuck);
        resolve({ code, signal, out, ms: performance.now() - t0 });
      });
    });
  for (const n of [1, 2]) {
    const r = await start();
    assert.equal(r.signal, 'SIGKILL', `start ${n}: ${JSON.stringify(r)}`);
    assert.equal(r.out, 'trial\n');
    const s = readDiskState(swapPaths(binary))!;
    assert.equal(s.phase, 'trial');
    assert.equal(s.starts, n);
  }
  const third = await start(); // the service manager's third start: rolled back, restart into A
  assert.equal(third.code, EXIT_RESTART_FOR_UPDATE);
  assert.equal(third.out, '');
  const s = readDiskState(swapPaths(binary))!;
  assert.equal(s.phase, 'rolled_back');
  assert.match(s.reason ?? '', /B started 2 times without confirming health/);
  assert.equal(readFileSync(binary, 'utf8'), '#!/bin/sh\necho A\n');
});
