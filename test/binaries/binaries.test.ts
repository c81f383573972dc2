// Single-executable agent builds (issue 6): the binaries start without Node.js, load both native
// addons from their embedded copies, read a serial tty and write SQLite, on linux-x64 natively and on
// linux-arm64 under qemu-user. The collector ships the same way (issue 18): its executables start,
// check configs, and (x64) carry MQTT → spool → Kafka + InfluxDB with their sinks on worker threads.
//
// The binaries under test are built from scripts/binaries/smoke-entry.ts into dist/smoke/ by the real
// build script (`npm run build:binaries` does the same for agent/main.ts into dist/). The build is
// incremental: a cold cache costs the arm64 Node download (50 MB from the npm registry) and ~20 s per
// executable; an unchanged tree a few seconds. Needs apt (binutils-aarch64-linux-gnu, qemu-user-static)
// or those already installed.
// EDGEFLOW_SKIP_BINARIES=1 skips the file (e.g. a CI job without a cached $EDGEFLOW_CACHE).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { batch, summary } from '../../collector/test-support/fixtures.ts';
import { openDatabase } from '../../shared/sqlite.ts';
import { kcatRead } from '../collector/kit.ts';
import { influxQuery, services, uniqueName } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const OUT = join(ROOT, 'dist/smoke');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

type Arch = 'x64' | 'arm64';
const ARCHES: Arch[] = ['x64', 'arm64'];

function binary(arch: Arch): string {
  return join(OUT, `edgeflow-agent-linux-${arch}`);
}

/** argv that runs the binary for `arch` on this x64 host (arm64 through qemu-user). */
function command(arch: Arch, args: string[]): string[] {
  return arch === 'x64'
    ? [binary(arch), ...args]
    : ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', binary(arch), ...args];
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runSync(arch: Arch, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const [cmd, ...rest] = command(arch, args);
  const t = performance.now();
  const res = spawnSync(cmd as string, rest, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr, ms: performance.now() - t };
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

const SKIP = process.env.EDGEFLOW_SKIP_BINARIES === '1' ? 'EDGEFLOW_SKIP_BINARIES=1' : false;
let work: string;
const children: ChildProcess[] = [];

/** Runs scripts/build-binaries.mjs with `args` (up to 15 minutes: arm64 runs under qemu) and asserts it succeeded. */
function buildBinaries(args: string[]): void {
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-binaries.mjs'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 15 * 60_000,
  });
  assert.equal(build.status, 0, `scripts/build-binaries.mjs ${args.join(' ')} failed`);
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'edgeflow-binaries-'));
  if (SKIP) return;
  // --verify installs qemu-user-static when missing and runs --version of both binaries once.
  buildBinaries(['--entry', 'scripts/binaries/smoke-entry.ts', '--out', OUT, '--verify']);
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

function startPtyPair(dir: string): Promise<{ device: string; peer: string }> {
  const device = join(dir, 'ttyAgent');
  const peer = join(dir, 'ttySensor');
  const socat = spawn('socat', [`pty,raw,echo=0,link=${peer}`, `pty,raw,echo=0,link=${device}`], {
    stdio: 'ignore',
  });
  children.push(socat);
  return waitFor('socat ptys', () => existsSync(device) && existsSync(peer) && { device, peer });
}

/** Resolves when the child printed `ready`; fails at once if it exits first. */
async function readyOrExit(
  stdout: () => string,
  stderr: () => string,
  exited: Promise<unknown[]>,
): Promise<void> {
  const early = exited.then(([code]) => {
    if (!stdout().includes('ready')) throw new Error(`exited with ${code} before ready: ${stderr()}`);
  });
  await Promise.race([waitFor('ready', () => stdout().includes('ready'), { timeoutMs: 60_000 }), early]);
}

/**
 * Runs an agent executable (`run`) until it logs its HTTP address, which it returns; fails at once, with
 * the agent's stderr, if the agent exits before. Killed after the file if still running.
 */
async function startListening(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
): Promise<{ agent: ChildProcess; url: string; exited: Promise<unknown[]>; stderr: () => string }> {
  const agent = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(agent);
  let stderr = '';
  agent.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = once(agent, 'exit');
  const early = exited.then(([code]) => {
    throw new Error(`agent exited with ${code} before listening: ${stderr}`);
  });
  early.catch(() => {});
  const url = await Promise.race([
    waitFor('http listening', () => /"url":"(http:[^"]+)","msg":"http listening"/.exec(stderr)?.[1], {
      timeoutMs,
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${stderr.slice(0, 2000)}`);
    }),
    early,
  ]);
  return { agent, url, exited, stderr: () => stderr };
}

function writeConfig(dir: string, body: string): string {
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, body);
  return file;
}

for (const arch of ARCHES) {
  describe(`edgeflow-agent-linux-${arch}`, { skip: SKIP }, () => {
    test('is an executable of the right architecture', (t) => {
      const head = readFileSync(binary(arch)).subarray(0, 20);
      assert.equal(head.readUInt32BE(0), 0x7f454c46, 'ELF magic');
      assert.equal(head.readUInt16LE(18), arch === 'x64' ? 0x3e : 0xb7, 'e_machine');
      t.diagnostic(`size ${(statSync(binary(arch)).size / 1048576).toFixed(1)} MiB`);
    });

    test('--version prints the package version, with no SEA warning', (t) => {
      // --version must not dlopen anything (fast start; setNativeDir() can still take effect later).
      const nativeDir = join(work, `version-${arch}-native`);
      const res = runSync(arch, ['--version'], { EDGEFLOW_NATIVE_DIR: nativeDir });
      assert.equal(res.status, 0, res.stderr);
      assert.equal(existsSync(nativeDir), false, 'addons extracted for --version');
      assert.equal(res.stdout.trim(), VERSION);
      assert.doesNotMatch(res.stderr, /ExperimentalWarning|single executable/i);
      const times = [res.ms];
      for (let i = 0; i < 2; i++) times.push(runSync(arch, ['--version']).ms);
      t.diagnostic(`startup to --version: ${times.map((ms) => `${ms.toFixed(0)} ms`).join(', ')}`);
    });

    test('check-config: exit 0 on a valid file, exit 2 with `path: problem` lines otherwise', () => {
      const dir = mkdtempSync(join(work, `cc-${arch}-`));
      const good = writeConfig(
        dir,
        `agent:\n  id: gw-001\n  dataDir: ${dir}\nsources:\n  - type: serial\n    path: /dev/ttyUSB0\n`,
      );
      const ok = runSync(arch, ['check-config', '--config', good]);
      assert.equal(ok.status, 0, ok.stderr);
      const bad = writeConfig(dir, 'agent:\n  id: "no spaces allowed"\n  dataDir: /x\nsources: []\n');
      const res = runSync(arch, ['check-config', '--config', bad]);
      assert.equal(res.status, 2);
      assert.match(res.stderr, /^agent\.id: /m);
      assert.match(res.stderr, /^sources: /m);
    });

    test('run: reads frames from a serial tty into its SQLite database (both native addons)', async (t) => {
      const dir = mkdtempSync(join(work, `run-${arch}-`));
      const { device, peer } = await startPtyPair(dir);
      const nativeDir = join(dir, 'native');
      const config = writeConfig(
        dir,
        `agent:\n  id: gw-001\n  dataDir: ${dir}\nsources:\n  - type: serial\n    path: ${device}\n    baudRate: 115200\n`,
      );
      const [cmd, ...args] = command(arch, ['run', '--config', config, '--lines', '3']);
      const agent = spawn(cmd as string, args, {
        env: { ...process.env, EDGEFLOW_NATIVE_DIR: nativeDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(agent);
      let stdout = '';
      let stderr = '';
      agent.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      agent.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      const exited = once(agent, 'exit');
      await readyOrExit(
        () => stdout,
        () => stderr,
        exited,
      );
      assert.match(stdout, /journal_mode=wal/);
      const idleRss = rssKiB(agent.pid as number);
      const frames = [
        '{"device":"s1","metric":"temperature","value":21.5}',
        'temperature=22',
        's1,humidity,40',
      ];
      writeFileSync(peer, `${frames.join('\n')}\n`);
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      assert.match(stdout, /stored 3 total 3/);

      // The addons were extracted where EDGEFLOW_NATIVE_DIR says, under content-hash names.
      const extracted = readdirSync(nativeDir).sort();
      assert.equal(extracted.length, 2, extracted.join(' '));
      assert.match(extracted[0] as string, /^better_sqlite3-[0-9a-f]{16}\.node$/);
      assert.match(extracted[1] as string, /^serialport_bindings-[0-9a-f]{16}\.node$/);
      // better-sqlite3 13's Node-API prebuild (issue 18). Version 12 was an ABI-specific node::ObjectWrap
      // addon that aborted on Node >= 24.19 when the GC collected a Statement outside a context.
      const addon = readFileSync(join(nativeDir, extracted[0] as string));
      assert.ok(addon.includes('napi_register_module_v1'), 'better-sqlite3 is a Node-API build');

      const db = openDatabase(join(dir, 'smoke.db'), { readonly: true });
      const rows = db.prepare('SELECT line FROM frames ORDER BY id').all() as { line: string }[];
      db.close();
      assert.deepEqual(
        rows.map((r) => r.line),
        frames,
      );
      t.diagnostic(
        `RSS after opening db and tty, idle: ${(idleRss / 1024).toFixed(1)} MiB${arch === 'x64' ? '' : ' (qemu-user process)'}`,
      );
    });

    test('systemd ProtectSystem=strict + StateDirectory: addons go to $STATE_DIRECTORY/.native', async (t) => {
      // Emulated with a private mount namespace: / (and so /tmp) read-only, only the state directory
      // writable, no XDG_RUNTIME_DIR, as systemd sets it up for `ProtectSystem=strict`, `StateDirectory=`.
      if (spawnSync('unshare', ['--mount', 'true']).status !== 0) {
        t.skip('unshare --mount not permitted here (needs root / CAP_SYS_ADMIN)');
        return;
      }
      const dir = mkdtempSync(join(work, `strict-${arch}-`));
      const state = join(dir, 'state');
      mkdirSync(state);
      const { device, peer } = await startPtyPair(dir);
      const config = writeConfig(
        dir,
        `agent:\n  id: gw-001\n  dataDir: ${state}\nsources:\n  - type: serial\n    path: ${device}\n`,
      );
      const script =
        'mount --make-rprivate / && mount --bind "$STATE_DIRECTORY" "$STATE_DIRECTORY" && mount -o remount,bind,ro / && exec "$@"';
      const env: NodeJS.ProcessEnv = { ...process.env, STATE_DIRECTORY: state };
      for (const k of ['XDG_RUNTIME_DIR', 'EDGEFLOW_NATIVE_DIR', 'EDGEFLOW_DATA', 'RUNTIME_DIRECTORY'])
        delete env[k];
      const agent = spawn(
        'unshare',
        ['--mount', 'sh', '-c', script, 'sh', ...command(arch, ['run', '--config', config, '--lines', '1'])],
        {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      children.push(agent);
      let stdout = '';
      let stderr = '';
      agent.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      agent.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      const exited = once(agent, 'exit');
      await readyOrExit(
        () => stdout,
        () => stderr,
        exited,
      );
      assert.match(stdout, /ready/, stderr);
      writeFileSync(peer, 'temperature=1\n');
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      assert.match(stdout, /stored 1 total 1/);
      assert.equal(readdirSync(join(state, '.native')).length, 2);
    });
  });
}

// The real agent (agent/main.ts) as `npm run build:binaries` ships it, into dist/.
describe('dist/ agent binaries (agent/main.ts)', { skip: SKIP }, () => {
  const dist = join(ROOT, 'dist');
  const agentCommand = (arch: Arch, args: string[]): string[] => {
    const bin = join(dist, `edgeflow-agent-linux-${arch}`);
    return arch === 'x64'
      ? [bin, ...args]
      : ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', bin, ...args];
  };

  before(() => {
    if (SKIP) return;
    buildBinaries(['--entry', 'agent/main.ts']);
  });

  for (const arch of ARCHES) {
    test(`linux-${arch}: --version and check-config on deploy/agent/agent.yaml`, (t) => {
      const [cmd, ...args] = agentCommand(arch, ['--version']);
      const t0 = performance.now();
      const version = spawnSync(cmd as string, args, { encoding: 'utf8', timeout: 120_000 });
      const ms = performance.now() - t0;
      assert.equal(version.status, 0, version.stderr);
      assert.equal(version.stdout.trim(), VERSION);
      // The sample names files under /etc/edgeflow that exist only on a gateway: its schema passes, and
      // the full check (issue 12: files are checked too) names each missing file, exit 2.
      const sample = join(ROOT, 'deploy/agent/agent.yaml');
      const [cmd2, ...args2] = agentCommand(arch, ['check-config', '--schema-only', '--config', sample]);
      const check = spawnSync(cmd2 as string, args2, { encoding: 'utf8', timeout: 120_000 });
      assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
      const [cmdF, ...argsF] = agentCommand(arch, ['check-config', '--config', sample]);
      const full = spawnSync(cmdF as string, argsF, { encoding: 'utf8', timeout: 120_000 });
      assert.equal(full.status, 2, `${full.stdout}${full.stderr}`);
      assert.match(`${full.stdout}${full.stderr}`, /^uplink\.passwordFile: .*ENOENT/m);
      const [cmd3, ...args3] = agentCommand(arch, ['check-config', '--config', join(work, 'missing.yaml')]);
      assert.equal(spawnSync(cmd3 as string, args3, { encoding: 'utf8', timeout: 120_000 }).status, 2);
      t.diagnostic(
        `size ${(statSync(join(dist, `edgeflow-agent-linux-${arch}`)).size / 1048576).toFixed(1)} MiB, --version ${ms.toFixed(0)} ms`,
      );
    });
  }

  for (const arch of ARCHES) {
    test(`linux-${arch}: run reads a serial tty, serves /status, stops cleanly on SIGTERM`, async (t) => {
      const dir = mkdtempSync(join(work, `agent-${arch}-`));
      const { device, peer } = await startPtyPair(dir);
      const config = writeConfig(
        dir,
        [
          'agent:',
          '  id: gw-bin',
          `  dataDir: ${dir}`,
          'sources:',
          '  - type: serial',
          '    name: line-a',
          `    path: ${device}`,
          '    format: json',
          'windows:',
          '  - name: temp-1m',
          '    match: { metric: temperature }',
          '    type: tumbling',
          '    size: 60s',
          '    aggregates: [count, mean]',
          'uplink:',
          '  urls: [mqtt://127.0.0.1:1]', // nothing listens: readings stay in the outbox
          '  username: gw-bin',
          'http: { listen: 127.0.0.1:0 }',
          '',
        ].join('\n'),
      );
      const [cmd, ...args] = agentCommand(arch, ['run', '--config', config]);
      const { agent, url, exited, stderr } = await startListening(cmd as string, args, {
        EDGEFLOW_NATIVE_DIR: join(dir, 'native'),
      });
      const rss = rssKiB(agent.pid as number);
      const frames = [21.5, 22, 22.5].map((v) =>
        JSON.stringify({ device: 's1', metric: 'temperature', value: v }),
      );
      writeFileSync(peer, `${frames.join('\n')}\n`);
      const status = await waitFor('3 readings in /status', async () => {
        const body = (await (await fetch(new URL('/status', url))).json()) as {
          counters: { readingsIn: number };
        };
        return body.counters.readingsIn >= 3 && body;
      });
      assert.equal(status.counters.readingsIn, 3);
      agent.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0, stderr());
      assert.ok(existsSync(join(dir, 'outbox.db')), 'outbox.db written');
      assert.ok(readdirSync(join(dir, 'native')).some((f) => f.startsWith('serialport_bindings-')));
      t.diagnostic(
        `RSS at start, idle: ${(rss / 1024).toFixed(1)} MiB${arch === 'x64' ? '' : ' (qemu-user process)'}`,
      );
    });
  }

  // Issue 14: --heap-growing-percent=25 in the blob's execArgv made V8 reject Node's code cache of its
  // built-in modules (+25 ms of start), so the agent sets it once /healthz answers (agent/v8-flags.ts).
  // A preloaded probe records the calls to v8.setFlagsFromString and the execArgv V8 started with.
  test('linux-x64: sets --heap-growing-percent=25 after start, not in its execArgv', async () => {
    const dir = mkdtempSync(join(work, 'agent-flags-'));
    const probe = join(dir, 'probe.cjs');
    const out = join(dir, 'probe.json');
    writeFileSync(
      probe,
      `const v8 = require('node:v8'); const set = v8.setFlagsFromString; const flags = [];
v8.setFlagsFromString = (f) => { flags.push(f); return set.call(v8, f); };
process.on('SIGUSR2', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ flags, execArgv: process.execArgv })));
`,
    );
    const config = writeConfig(
      dir,
      `agent: { id: gw-flags, dataDir: ${JSON.stringify(join(dir, 'data'))} }\nhttp: { listen: 127.0.0.1:0 }\n`,
    );
    const [cmd, ...args] = agentCommand('x64', ['run', '--config', config]);
    const { agent, url, exited, stderr } = await startListening(cmd as string, args, {
      EDGEFLOW_NATIVE_DIR: join(dir, 'native'),
      NODE_OPTIONS: `--require ${probe}`,
    });
    assert.equal((await fetch(new URL('/healthz', url))).status, 200);
    agent.kill('SIGUSR2');
    const seen = await waitFor('probe output', () =>
      existsSync(out)
        ? (JSON.parse(readFileSync(out, 'utf8')) as { flags: string[]; execArgv: string[] })
        : null,
    );
    assert.deepEqual(seen.flags, ['--heap-growing-percent=25']);
    assert.deepEqual(seen.execArgv, ['--max-semi-space-size=2', '--max-old-space-size=1024']);
    agent.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr());
  });
});

// The optional V8 startup snapshot (issue 14, `--snapshot`, off by default: docs/design/binaries.md
// "Startup snapshot"): the heap after agent/main.ts's modules are evaluated is saved at build time, and
// the command line runs from the deserialize-main function, reading argv and env at start.
describe('x64 agent with a startup snapshot (--snapshot)', { skip: SKIP }, () => {
  const out = join(ROOT, 'dist/snapshot');
  const bin = join(out, 'edgeflow-agent-linux-x64');

  before(() => {
    if (SKIP) return;
    buildBinaries(['--entry', 'agent/main.ts', '--arch', 'x64', '--snapshot', '--out', out]);
  });

  test('--version, check-config and an unknown command, from the snapshot', () => {
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.trim(), VERSION);
    const sample = join(ROOT, 'deploy/agent/agent.yaml');
    const check = spawnSync(bin, ['check-config', '--schema-only', '--config', sample], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
    assert.equal(check.stdout, `${sample}: ok\n`);
    const unknown = spawnSync(bin, ['frobnicate'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  });

  test('run: opens the SQLite outbox (addon loaded after deserialisation) and answers /healthz', async () => {
    const dir = mkdtempSync(join(work, 'snapshot-'));
    const config = writeConfig(
      dir,
      [
        'agent:',
        '  id: gw-snap',
        `  dataDir: ${dir}/data`,
        'sources:',
        '  - type: mqtt',
        '    name: floor',
        '    url: mqtt://127.0.0.1:1',
        "    topics: ['x/+/+']",
        "    topicPattern: 'x/{device}/{metric}'",
        '    format: number',
        'http: { listen: 127.0.0.1:0 }',
      ].join('\n'),
    );
    const { agent, url, exited, stderr } = await startListening(
      bin,
      ['run', '--config', config],
      { EDGEFLOW_NATIVE_DIR: join(dir, 'native') },
      30_000,
    );
    try {
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      const status = (await (await fetch(`${url}/status`)).json()) as {
        agent: string;
        outbox: { items: number };
      };
      assert.equal(status.agent, 'gw-snap');
      assert.equal(status.outbox.items, 0);
    } finally {
      agent.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0, stderr());
    }
  });
});

// The collector (collector/main.ts) as `npm run build:binaries` ships it, into dist/ (issue 18). Its sinks
// run on worker threads, whose entry is bundled into the executable too (shared/ts-worker.ts).
describe('dist/ collector binaries (collector/main.ts)', { skip: SKIP }, () => {
  const dist = join(ROOT, 'dist');
  const collectorCommand = (arch: Arch, args: string[]): string[] => {
    const bin = join(dist, `edgeflow-collector-linux-${arch}`);
    return arch === 'x64'
      ? [bin, ...args]
      : ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', bin, ...args];
  };
  const runCollectorSync = (arch: Arch, args: string[]) => {
    const [cmd, ...rest] = collectorCommand(arch, args);
    return spawnSync(cmd as string, rest, { encoding: 'utf8', timeout: 120_000 });
  };

  before(() => {
    if (SKIP) return;
    buildBinaries(['--product', 'collector']);
  });

  for (const arch of ARCHES) {
    test(`linux-${arch}: --version, add-agent, check-config (ok, and bad: exit 2 with path: problem)`, (t) => {
      const dir = mkdtempSync(join(work, `collector-check-${arch}-`));
      const t0 = performance.now();
      const version = runCollectorSync(arch, ['--version']);
      const ms = performance.now() - t0;
      assert.equal(version.status, 0, version.stderr);
      assert.equal(version.stdout.trim(), VERSION);
      const credentials = join(dir, 'agents.json');
      const add = runCollectorSync(arch, ['add-agent', 'gw-bin', '--credentials', credentials]);
      assert.equal(add.status, 0, add.stderr);
      assert.ok(existsSync(credentials));
      const good = join(dir, 'collector.yaml');
      writeFileSync(
        good,
        `collector: { id: bin, dataDir: ${dir}/data }\nmqtt: { listen: [tcp://127.0.0.1:0], credentials: ${credentials} }\nkafka: { brokers: [127.0.0.1:1] }\n`,
      );
      const ok = runCollectorSync(arch, ['check-config', '--config', good]);
      assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, `collector: { id: bin, dataDir: ${dir}/data }\nmqtt: { listen: [nope] }\n`);
      const refused = runCollectorSync(arch, ['check-config', '--config', bad]);
      assert.equal(refused.status, 2, refused.stderr);
      assert.match(refused.stderr, /^mqtt\./m);
      t.diagnostic(
        `size ${(statSync(join(dist, `edgeflow-collector-linux-${arch}`)).size / 1048576).toFixed(1)} MiB, --version ${ms.toFixed(0)} ms`,
      );
    });
  }

  test('linux-x64: run carries MQTT → spool → Kafka + InfluxDB on sink threads, stops cleanly on SIGTERM', async () => {
    const env = services();
    const dir = mkdtempSync(join(work, 'collector-run-'));
    const agent = uniqueName('bin-gw').replace(/[^a-zA-Z0-9._-]/g, '-');
    const prefix = uniqueName('edgeflow-bin');
    const credentials = join(dir, 'agents.json');
    const add = runCollectorSync('x64', ['add-agent', agent, '--credentials', credentials]);
    assert.equal(add.status, 0, add.stderr);
    const secret = add.stdout.trim().split('\n').pop() as string;
    const i = env.influx1;
    const config = join(dir, 'collector.yaml');
    writeFileSync(
      config,
      [
        `collector: { id: bin, dataDir: ${dir}/data, sinkThreads: true }`,
        `mqtt: { listen: [tcp://127.0.0.1:0], credentials: ${credentials} }`,
        'http: { listen: 127.0.0.1:0 }',
        `kafka: { brokers: [${env.kafka.brokers.join(', ')}], topics: { summaries: ${prefix}.summaries, alerts: ${prefix}.alerts, status: ${prefix}.status, late: ${prefix}.late, deadletter: ${prefix}.deadletter } }`,
        `influx: { url: ${i.url}, api: v1, db: ${i.db}, username: ${i.username}, password: ${i.password} }`,
        '',
      ].join('\n'),
    );
    const [cmd, ...args] = collectorCommand('x64', ['run', '--config', config]);
    const proc = spawn(cmd as string, args, {
      env: { ...process.env, EDGEFLOW_NATIVE_DIR: join(dir, 'native') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = once(proc, 'exit');
    await readyOrExit(
      () => stdout,
      () => stderr,
      exited,
    );
    const ready = JSON.parse(stdout.split('\n')[0] as string) as { mqtt: { port: number }[] };
    const mq = await mqtt.connectAsync(`mqtt://127.0.0.1:${ready.mqtt[0]!.port}`, {
      username: agent,
      password: secret,
      reconnectPeriod: 0,
    });
    const t0 = Date.UTC(2024, 2, 1);
    const items = Array.from({ length: 30 }, (_, n) => summary(agent, `d${n % 3}`, t0 + n * 60_000));
    await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items), { qos: 1 });
    await mq.endAsync();
    const recs = await waitFor(
      'kafka has 30 records',
      async () => {
        const r = await kcatRead(env.kafka.brokers, `${prefix}.summaries`);
        return r.length >= 30 ? r : null;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(recs.length, 30);
    await waitFor('influx has 30 points', async () => {
      const r = await influxQuery(`SELECT count("count") FROM edgeflow_summary WHERE agent = '${agent}'`);
      return r.results[0]?.series?.[0]?.values[0]?.[1] === 30;
    });
    proc.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.ok(readdirSync(join(dir, 'native')).some((f) => f.startsWith('better_sqlite3-')));
  });
});
