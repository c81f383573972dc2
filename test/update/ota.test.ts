// Issue 16 "Proof", end to end with real processes: a collector (Kafka sink, `artifacts:` serving the
// releases), the x64 single-executable agent built three times by the real build script — A and B with
// different --release-version, C from test/update/unhealthy-entry.ts (never healthy) — readings over
// MQTT (the test bed's Mosquitto) counted exactly in Kafka across every update:
//
//   A runs → update.version = B (SIGHUP): download (SIGKILLed mid-download: resumes), verify, swap,
//   exit 75, B's trial → committed → update.version = C: C SIGKILLed during its first start (trial),
//   started again by the service manager, never healthy → rolled back to B,
//   reported `rolled_back` → a tampered artifact and a manifest signed by another key: refused, B keeps
//   running (same process) → Σ summary counts in Kafka = readings published.
//
// systemd is not PID 1 here, so the test plays the service manager of deploy/systemd/edgeflow-agent.service:
// before every start it runs the ExecStartPre guard (deploy/systemd/edgeflow-agent-update-guard), and it
// restarts the agent whenever it exits (Restart=always; exit 75 is the updater asking for it).
// EDGEFLOW_SKIP_BINARIES=1 skips the file (no executables built).
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { signBinary } from '../../collector/artifacts/sign.ts';
import { releaseBinaryName } from '../../shared/release.ts';
import {
  accountSummaries,
  addAgentCli,
  COUNTING_WINDOW,
  kafkaTopics,
  kafkaYaml,
  readTopic,
  safeId,
  startCollector,
  writeText,
} from '../e2e/kit.ts';
import { tempDir } from '../helpers/agent-process.ts';
import { freePort } from '../helpers/mosquitto.ts';
import { killAll, killGroup, spawnTracked } from '../helpers/processes.ts';
import { services } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';
import { type Built, buildRelease, ROOT, testKeys } from './builds.ts';

const SKIP = process.env.EDGEFLOW_SKIP_BINARIES ? 'EDGEFLOW_SKIP_BINARIES is set' : false;
const GUARD = join(ROOT, 'deploy/systemd/edgeflow-agent-update-guard');
const V = {
  a: '9.1.0-ota.a',
  b: '9.2.0-ota.b',
  c: '9.3.0-ota.c',
  tampered: '9.4.0-tampered',
  wrongKey: '9.5.0-wrongkey',
};

after(async () => {
  await killAll();
});

/** The service manager: guard, start, restart on every exit until stop(). */
class Service {
  proc: ChildProcess | null = null;
  starts = 0;
  exits: (number | string | null)[] = [];
  url: string | null = null;
  logs: string[] = [];
  private stopping = false;
  constructor(
    private readonly binary: string,
    private readonly config: string,
  ) {}

  start(): void {
    const g = spawnSync('sh', [GUARD, this.binary], { encoding: 'utf8' });
    if (g.stderr) this.logs.push(`guard: ${g.stderr.trim()}`);
    this.starts++;
    this.url = null;
    const p = spawnTracked(this.binary, ['run', '--config', this.config, '--log-level', 'info'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, EDGEFLOW_NATIVE_DIR: join(this.config, '..', 'native') },
    });
    this.proc = p;
    let buf = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.logs.push(line);
        if (line.includes('http listening')) {
          try {
            this.url = (JSON.parse(line) as { url: string }).url;
          } catch {}
        }
      }
    });
    // A start that fails (not executable, missing) is a failed start for systemd too: restart.
    p.once('error', (err) => {
      this.logs.push(`spawn failed: ${err.message}`);
      this.exits.push(`spawn: ${(err as NodeJS.ErrnoException).code}`);
      if (this.proc === p) this.proc = null;
      if (!this.stopping && this.starts < 50) setImmediate(() => this.start());
    });
    p.once('exit', (code, signal) => {
      this.exits.push(code ?? signal);
      if (this.proc === p) this.proc = null;
      if (!this.stopping && this.starts < 50) this.start(); // Restart=always (RestartSec is 2 s on a device; none here)
    });
  }

  async status(): Promise<AgentStatus | null> {
    if (!this.url) return null;
    try {
      const r = await fetch(`${this.url}/status`, { signal: AbortSignal.timeout(3000) });
      return r.ok ? ((await r.json()) as AgentStatus) : null;
    } catch {
      return null;
    }
  }

  reload(): void {
    this.proc?.kill('SIGHUP');
  }

  kill9(): void {
    if (this.proc) killGroup(this.proc, 'SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const p = this.proc;
    if (!p) return;
    const exited = once(p, 'exit');
    p.kill('SIGTERM');
    await exited;
  }
}

/** The parts of the agent's /status this test reads. */
interface AgentStatus {
  version: string;
  sources?: Record<string, { state?: string }>;
  update?: { running: string; wanted?: string; state: string; reason?: string; bytes?: number };
}

let builds: Record<'a' | 'b' | 'c', Built>;

before(() => {
  if (SKIP) return;
  builds = {
    a: buildRelease('A', V.a),
    b: buildRelease('B', V.b),
    c: buildRelease('C', V.c, { entry: join(ROOT, 'test/update/unhealthy-entry.ts') }),
  };
});

test('A → B committed, C rolled back to B, tampered and wrong-key refused, readings exact', {
  skip: SKIP,
  timeout: 600_000,
}, async () => {
  const env = services();
  const dir = tempDir('edgeflow-ota-');
  const agentId = safeId('ota');
  const topics = kafkaTopics(agentId);

  // Releases the collector serves: B, C, a tampered copy of B, B signed by another key.
  const releases = join(dir, 'releases');
  const publish = (version: string, b: Built) => {
    mkdirSync(join(releases, version), { recursive: true });
    const bin = join(releases, version, releaseBinaryName('x64'));
    copyFileSync(b.binary, bin);
    copyFileSync(b.manifestFile, `${bin}.manifest.json`);
    return bin;
  };
  publish(V.b, builds.b);
  publish(V.c, builds.c);
  const { pub } = testKeys();
  const tamperedBin = join(releases, V.tampered, releaseBinaryName('x64'));
  mkdirSync(join(releases, V.tampered), { recursive: true });
  copyFileSync(builds.b.binary, tamperedBin);
  await signBinary(tamperedBin, V.tampered, readFileSync(testKeys().key), 'x64');
  const bytes = readFileSync(tamperedBin);
  bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff; // after signing: sha256 no longer matches
  writeFileSync(tamperedBin, bytes);
  const wrongBin = join(releases, V.wrongKey, releaseBinaryName('x64'));
  mkdirSync(join(releases, V.wrongKey), { recursive: true });
  copyFileSync(builds.b.binary, wrongBin);
  const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  await signBinary(wrongBin, V.wrongKey, other, 'x64');

  const credentials = join(dir, 'agents.json');
  const secret = addAgentCli(agentId, credentials);
  const mqttPort = await freePort();
  const collectorYaml = writeText(
    join(dir, 'collector.yaml'),
    `collector: { id: ota, dataDir: "${join(dir, 'collector-data')}" }
mqtt: { listen: ["tcp://127.0.0.1:${mqttPort}"], credentials: "${credentials}" }
http: { listen: "127.0.0.1:0" }
${kafkaYaml(env.kafka.brokers, topics)}artifacts: { dir: "${releases}" }
`,
  );
  const collector = await startCollector(collectorYaml, join(dir, 'collector.log'));

  // The installed agent: A at /usr/local/lib/edgeflow/edgeflow-agent's stand-in.
  const libDir = join(dir, 'lib');
  mkdirSync(libDir);
  const installed = join(libDir, 'edgeflow-agent');
  copyFileSync(builds.a.binary, installed);
  const prefix = `ota/${agentId}`;
  const config = (version?: string) => ({
    agent: { id: agentId, dataDir: join(dir, 'agent-data') },
    sources: [
      {
        type: 'mqtt',
        name: 'floor',
        url: env.mosquitto.url,
        topics: [`${prefix}/+/+`],
        topicPattern: `${prefix}/{device}/{metric}`,
        format: 'json',
      },
    ],
    watermark: { maxOutOfOrder: '500ms', idleTimeout: '1s' },
    windows: [COUNTING_WINDOW],
    uplink: {
      urls: [`mqtt://127.0.0.1:${mqttPort}`],
      username: agentId,
      passwordFile: writeText(join(dir, 'uplink-secret'), secret),
      batch: { maxItems: 200, maxDelay: '200ms' },
    },
    checkpoint: { interval: '200ms' },
    http: { listen: '127.0.0.1:0' },
    update: {
      publicKeyFile: pub,
      url: collector.http,
      ...(version ? { version } : {}),
      healthDeadline: '40s',
      retryInterval: '2s',
      // ~110 MB at 40 MB/s: a download long enough to be killed in the middle.
      bandwidth: 40 * 1024 * 1024,
      binary: installed,
    },
  });
  const configFile = join(dir, 'agent.yaml');
  const setWanted = (version?: string) => writeFileSync(configFile, stringify(config(version)));
  setWanted();
  const svc = new Service(installed, configFile);
  svc.start();
  const statusWhere = (what: string, pred: (s: AgentStatus) => boolean, timeoutMs = 240_000) =>
    waitFor(
      what,
      async () => {
        const s = await svc.status();
        return s && pred(s) ? s : null;
      },
      { timeoutMs },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\nexits ${JSON.stringify(svc.exits)}\n${svc.logs.slice(-25).join('\n')}`,
      );
    });
  await statusWhere('A running, source up', (s) => s.version === V.a && s.sources?.floor?.state === 'up');

  // Readings: QoS 1, one every 20 ms across 3 devices, for the whole run.
  const pubClient: MqttClient = await mqtt.connectAsync(env.mosquitto.url, { clean: true });
  let sent = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      const device = `d${sent % 3}`;
      await pubClient.publishAsync(
        `${prefix}/${device}/temp`,
        JSON.stringify({ value: sent, ts: Date.now() }),
        { qos: 1 },
      );
      sent++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  try {
    // A → B, with a SIGKILL in the middle of the download: the next start resumes it.
    setWanted(V.b);
    svc.reload();
    const mid = await statusWhere(
      'A downloading B',
      (s) => s.update?.state === 'downloading' && (s.update?.bytes ?? 0) > 10 * 1024 * 1024,
    );
    const pidA = svc.proc?.pid;
    svc.kill9();
    const b = await statusWhere('B committed', (s) => s.version === V.b && s.update?.state === 'committed');
    assert.notEqual(svc.proc?.pid, pidA);
    assert.equal(b.update?.running, V.b);
    assert.ok(svc.exits.includes(75), `the updater exits 75 for the restart: ${JSON.stringify(svc.exits)}`);
    const progress = JSON.parse(readFileSync(join(dir, 'agent-data/update', V.b, 'progress.json'), 'utf8'));
    assert.ok(
      progress.used < builds.b.manifest.size + (mid.update?.bytes ?? 0) / 2,
      `resumed, not restarted: ${progress.used} bytes for ${builds.b.manifest.size} (killed at ${mid.update?.bytes ?? 0})`,
    );
    assert.equal(readFileSync(installed).length, builds.b.manifest.size);
    assert.equal(readFileSync(`${installed}.prev`).length, builds.a.manifest.size);

    // B → C: C never becomes healthy; its own updater rolls back at the deadline, B comes back.
    setWanted(V.c);
    svc.reload();
    // kill -9 during C's first start (its trial): the guard counts the start, C comes up on trial again.
    await statusWhere('C on trial', (s) => s.version === V.c && s.update?.state === 'trial');
    svc.kill9();
    // (C's own updater wrote the reason below: only a trial deadline produces it.)
    const back = await statusWhere(
      'rolled back to B',
      (s) => s.version === V.b && s.update?.state === 'rolled_back',
    );
    assert.equal(back.update?.wanted, V.c);
    assert.equal(svc.exits.filter((e) => e === 'SIGKILL').length, 2, JSON.stringify(svc.exits));
    assert.match(
      back.update?.reason ?? '',
      /not healthy within 40s: .*(uplink not connected|source floor not open|agent not started)/,
    );

    // Tampered artifact and wrong-key manifest: refused, nothing swapped, B keeps running (same process).
    const pidB = svc.proc?.pid;
    setWanted(V.tampered);
    svc.reload();
    const t = await statusWhere(
      'tampered refused',
      (s) => s.update?.state === 'refused' && s.update?.wanted === V.tampered,
    );
    assert.match(t.update?.reason ?? '', /artifact refused: sha256 mismatch/);
    setWanted(V.wrongKey);
    svc.reload();
    const w = await statusWhere(
      'wrong key refused',
      (s) => s.update?.state === 'refused' && s.update?.wanted === V.wrongKey,
    );
    assert.match(w.update?.reason ?? '', /manifest signed by unknown key/);
    assert.equal(svc.proc?.pid, pidB);
    assert.equal(w.version, V.b);
    assert.equal(readFileSync(installed).length, builds.b.manifest.size);

    // Readings: every one published is counted once in Kafka (latest revision per summary).
    publishing = false;
    await publisher;
    await pubClient.endAsync();
    const acct = await waitFor(
      `Σ count in Kafka = ${sent}`,
      async () => {
        const a = accountSummaries(await readTopic(env.kafka.brokers, topics.summaries));
        return a.sum >= sent ? a : null;
      },
      { timeoutMs: 180_000 },
    );
    assert.equal(acct.sum, sent, `Kafka has ${acct.sum} readings of ${sent} published`);
    assert.equal(acct.conflicting, 0);
    process.stderr.write(
      `# ota: ${sent} readings, ${acct.ids} summaries, ${acct.resent} re-sent records; starts ${svc.starts}, exits ${JSON.stringify(svc.exits)}\n`,
    );
  } finally {
    publishing = false;
    await publisher.catch(() => {});
    await svc.stop();
    await collector.kill('SIGTERM');
    // ~1 GB of executables (releases, downloads, installed copies).
    rmSync(dir, { recursive: true, force: true });
  }
});
