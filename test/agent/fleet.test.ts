// Issue 15, the agent side of fleet control, with a real agent process and a real broker (the shared
// mosquitto) standing in for the collector: the test signs desired-state documents with a key it
// generates, publishes them retained at QoS 1 on the agent's downlink, and reads the agent's report from
// its /status and from the status it publishes on the uplink.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { deadPort } from '../../agent/uplink/test-broker.ts';
import { configHash, type FleetReport, signDesiredState } from '../../shared/fleet.ts';
import { downlinkTopic } from '../../shared/topics.ts';
import { type AgentProcess, ROOT, startAgent, tempDir, writeConfig } from '../helpers/agent-process.ts';
import { freePort } from '../helpers/mosquitto.ts';
import { spawnTracked } from '../helpers/processes.ts';
import { services } from '../helpers/services.ts';
import { captureUplink } from '../helpers/uplink-capture.ts';
import { waitFor } from '../helpers/wait.ts';

const CRASH_ENV = 'EDGEFLOW_TEST_FLEET_CRASH_VERSION';
const HANG_ENV = 'EDGEFLOW_TEST_FLEET_HANG_VERSION';
const agents: AgentProcess[] = [];
const clients: MqttClient[] = [];
const retained: string[] = [];
after(async () => {
  for (const a of agents) await a.stop('SIGKILL');
  // Leave no retained document behind on the shared broker.
  const pub = clients[0];
  if (pub?.connected) for (const t of retained) await pub.publishAsync(t, '', { qos: 1, retain: true });
  for (const c of clients) await c.endAsync(true);
});

function keys(dir: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicKeyFile = join(dir, 'fleet.pub');
  writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { publicKeyFile, privateKey };
}

function signed(key: KeyObject, agent: string, version: number, config: Record<string, unknown>): string {
  return JSON.stringify(
    signDesiredState(
      {
        v: 1,
        kind: 'desired',
        agent,
        version,
        rollout: `test-${version}`,
        hash: configHash(config),
        issuedAt: Date.now(),
        config,
      },
      key,
    ),
  );
}

async function publisher(): Promise<MqttClient> {
  const c = await mqtt.connectAsync(services().mosquitto.url, {
    clientId: `fleet-pub-${process.pid}-${clients.length}`,
  });
  clients.push(c);
  return c;
}

async function push(pub: MqttClient, agent: string, payload: string): Promise<void> {
  const topic = downlinkTopic(agent);
  if (!retained.includes(topic)) retained.push(topic);
  await pub.publishAsync(topic, payload, { qos: 1, retain: true });
}

async function report(a: AgentProcess, version: number, state: string): Promise<FleetReport> {
  return waitFor(
    `fleet report ${state} for version ${version}`,
    async () => {
      const f = (await a.status()).fleet;
      return f && f.version === version && f.state === state ? f : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

test('pushed configuration: applied, wrong key and disallowed keys rejected, a broken source rolled back; readings counted exactly', {
  timeout: 300_000,
}, async (t) => {
  const id = `fleet-a-${process.pid}`;
  const dir = tempDir();
  const { publicKeyFile, privateKey } = keys(dir);
  const port = await freePort();
  const gw = {
    type: 'mqtt-broker',
    name: 'gw',
    listen: `127.0.0.1:${port}`,
    topicPattern: 'sensors/{device}/{metric}',
    format: 'json',
    allowAnonymous: true, // this test is about fleet documents; sensor logins: mqtt-broker.security.test.ts
  };
  const w1 = { name: 'w1', type: 'tumbling', size: '10s', aggregates: ['count', 'sum'] };
  const deadlineMs = 8000;
  const cfgPath = writeConfig(dir, {
    agent: { id, dataDir: join(dir, 'data') },
    sources: [gw],
    watermark: { maxOutOfOrder: '0s', idleTimeout: '10m' },
    windows: [w1],
    uplink: { urls: [services().mosquitto.url], batch: { maxItems: 50, maxDelay: '100ms' } },
    checkpoint: { interval: '200ms' },
    http: { listen: '127.0.0.1:0' },
    fleet: { publicKeyFile, healthDeadline: `${deadlineMs}ms`, labels: { site: 'north', line: '3' } },
  });
  const cap = await captureUplink(services().mosquitto.url, id);
  clients.push(cap.client);
  const pub = await publisher();
  const agent = await startAgent(cfgPath);
  agents.push(agent);
  const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: `sensor-${id}`,
    reconnectPeriod: 100,
  });
  clients.push(sensor);

  const base = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
  let sent = 0;
  // Chunks of 50 in flight: a PUBACK waits for the checkpoint that holds the reading (up to
  // checkpoint.interval), so one at a time would take minutes. mqtt.js keeps them in order.
  const send = async (n: number) => {
    for (let done = 0; done < n; ) {
      const chunk = Math.min(50, n - done);
      const acks: Promise<unknown>[] = [];
      for (let i = 0; i < chunk; i++) {
        const value = sent + 1;
        const body = JSON.stringify({ value, ts: base + sent * 50 });
        acks.push(sensor.publishAsync('sensors/dev1/temperature', body, { qos: 1 }));
        sent++;
      }
      await Promise.all(acks);
      done += chunk;
    }
  };
  await send(200);
  await waitFor('labels in the published status', () =>
    cap.captured.status.some((s) => s.labels?.site === 'north' && s.labels?.line === '3'),
  );

  // 1. Signed with another key: rejected, never applied.
  const stranger = generateKeyPairSync('ed25519').privateKey;
  await push(pub, id, signed(stranger, id, 1, { windows: [] }));
  const wrongKey = await report(agent, 1, 'rejected');
  assert.match(wrongKey.reason ?? '', /^unknown key: signed by key [0-9a-f]{16}$/);

  // 2. A key outside the allow list (and one that is never remote): rejected with the reason.
  await push(
    pub,
    id,
    signed(privateKey, id, 2, { http: { listen: '0.0.0.0:9464' }, agent: { id: 'x', dataDir: '/' } }),
  );
  const disallowed = await report(agent, 2, 'rejected');
  assert.match(disallowed.reason ?? '', /agent: can never be set remotely/);
  assert.match(disallowed.reason ?? '', /http: not allowed remotely/);

  const reloads = () => agent.logs.filter((l) => l.includes('configuration reloaded')).length;
  assert.equal(reloads(), 0, 'nothing rejected was applied');

  // 3. A good document, pushed while readings flow: a second window and another batch policy.
  const w2 = { name: 'w2', type: 'tumbling', size: '10s', aggregates: ['count'] };
  const good = { windows: [w1, w2], uplink: { batch: { maxItems: 7, maxDelay: '50ms' } } };
  const during = send(300);
  const pushedAt = Date.now();
  await push(pub, id, signed(privateKey, id, 3, good));
  await during;
  const applied = await report(agent, 3, 'applied');
  t.diagnostic(`publish -> applied (reload, uplink reconnected, healthy): ${applied.at - pushedAt} ms`);
  assert.equal(applied.hash, configHash(good));
  assert.deepEqual(applied.lastKnownGood, { version: 3, hash: configHash(good) });
  await waitFor('applied status published on the uplink', () =>
    cap.captured.status.some((s) => s.fleet?.version === 3 && s.fleet.state === 'applied' && s.labels?.site),
  );
  assert.equal(reloads(), 1, 'applied through the reload path');

  // 4. A document whose serial port does not exist: pending, then rolled back at the deadline.
  const missing = { type: 'serial', name: 'missing', path: `/dev/edgeflow-fleet-missing-${process.pid}` };
  await push(pub, id, signed(privateKey, id, 4, { sources: [gw, missing] }));
  const pending = await report(agent, 4, 'pending');
  const rolledBack = await report(agent, 4, 'rolled_back');
  const tookMs = rolledBack.at - pending.at;
  assert.ok(tookMs >= deadlineMs && tookMs < deadlineMs + 30_000, `rolled back after ${tookMs} ms`);
  t.diagnostic(`pending -> rolled_back: ${tookMs} ms (deadline ${deadlineMs} ms)`);
  assert.match(rolledBack.reason ?? '', /^unhealthy after 8000 ms: source missing (down|starting)/);
  assert.deepEqual(rolledBack.lastKnownGood, { version: 3, hash: configHash(good) });
  const st = await agent.status();
  assert.deepEqual(Object.keys(st.sources), ['gw'], 'back on version 3: the serial source is gone');
  await waitFor('rolled_back status published on the uplink', () =>
    cap.captured.status.some((s) => s.fleet?.version === 4 && s.fleet.state === 'rolled_back'),
  );

  // 5. Readings after the rollback, then one that closes every window so far.
  await waitFor('sensor reconnected to the restarted embedded broker', () => sensor.connected);
  await send(200);
  const closeStart = base + 120_000;
  await sensor.publishAsync('sensors/dev1/temperature', JSON.stringify({ value: 0, ts: closeStart }), {
    qos: 1,
  });
  const w1Total = () =>
    [...cap.captured.summaries.values()]
      .filter((s) => s.window.name === 'w1' && s.window.start < closeStart)
      .reduce((a, s) => a + s.count, 0);
  await waitFor('every w1 reading counted on the uplink', () => w1Total() >= sent, {
    timeoutMs: 30_000,
    progress: w1Total,
  });
  assert.equal(sent, 700);
  assert.equal(w1Total(), sent, 'no reading lost or counted twice across two reconfigurations');
  const w1Sum = [...cap.captured.summaries.values()]
    .filter((s) => s.window.name === 'w1' && s.window.start < closeStart)
    .reduce((a, s) => a + s.sum, 0);
  assert.equal(w1Sum, (sent * (sent + 1)) / 2);
  assert.equal((await agent.status()).counters.readingsIn, sent + 1);
  assert.equal(await agent.stop('SIGTERM'), 0);
});

/** Runs the agent as a service manager would, until the process ends; returns how it ended. */
async function runUntilDeath(configPath: string, env: NodeJS.ProcessEnv) {
  const proc = spawnTracked(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'agent/main.ts'), 'run', '--config', configPath],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let logs = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    logs += c;
  });
  const [code, signal] = (await once(proc, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, logs };
}

/**
 * The start after the deaths on version 1: the local configuration (one window) runs, and version 1 is
 * reported rolled back as a crash after `starts` starts.
 */
async function startedOnOldConfig(cfgPath: string, env: Record<string, string>, starts: number) {
  const agent = await startAgent(cfgPath, { env });
  agents.push(agent);
  assert.ok(agent.logs.some((l) => l.includes('"windows":1,') && l.includes('agent started')));
  const f = (await agent.status()).fleet;
  assert.equal(f.state, 'rolled_back');
  assert.equal(f.version, 1);
  const n = starts === 1 ? '1 start' : `${starts} starts`;
  assert.ok(f.reason.startsWith(`crashed: the agent stopped while version 1 was pending (${n})`), f.reason);
  return agent;
}

test('a pushed configuration that hangs the event loop: the watchdog thread kills the agent, the next start is on the old one', {
  timeout: 300_000,
}, async () => {
  const id = `fleet-h-${process.pid}`;
  const dir = tempDir();
  const { publicKeyFile, privateKey } = keys(dir);
  const w1 = { name: 'w1', type: 'tumbling', size: '10s' };
  const cfgPath = writeConfig(dir, {
    agent: { id, dataDir: join(dir, 'data') },
    windows: [w1],
    uplink: { urls: [services().mosquitto.url] },
    http: { listen: '127.0.0.1:0' },
    fleet: { publicKeyFile, healthDeadline: '2s', allow: ['windows'] },
  });
  const env = { [HANG_ENV]: '1' };
  const pub = await publisher();
  await push(pub, id, signed(privateKey, id, 1, { windows: [w1, { name: 'w2', type: 'count', count: 3 }] }));

  // Its deadline timer cannot run: only the watchdog (2 s + 5 s grace) ends it, as SIGKILL.
  const hung = await runUntilDeath(cfgPath, env);
  assert.equal(hung.signal, 'SIGKILL', hung.logs.slice(-2000));
  assert.match(hung.logs, /hanging on purpose/, hung.logs.slice(-2000));

  // What the service manager's restart finds: the old configuration, version 1 reported rolled back.
  const agent = await startedOnOldConfig(cfgPath, env, 1);
  assert.equal(await agent.stop('SIGTERM'), 0);
});

test('a crash loop on a pushed configuration ends on the old configuration', {
  timeout: 300_000,
}, async () => {
  const id = `fleet-b-${process.pid}`;
  const dir = tempDir();
  const { publicKeyFile, privateKey } = keys(dir);
  const dataDir = join(dir, 'data');
  const w1 = { name: 'w1', type: 'tumbling', size: '10s' };
  const cfgPath = writeConfig(dir, {
    agent: { id, dataDir },
    windows: [w1],
    uplink: { urls: [services().mosquitto.url] },
    http: { listen: '127.0.0.1:0' },
    fleet: { publicKeyFile, healthDeadline: '5s', crashRetries: 1, allow: ['windows', 'uplink.urls'] },
  });
  const env = { [CRASH_ENV]: '1' };
  const pub = await publisher();
  const doc = signed(privateKey, id, 1, { windows: [w1, { name: 'w2', type: 'count', count: 3 }] });
  // Published first, retained: the agent gets it on its first connection.
  await push(pub, id, doc);

  // Start 1: takes version 1, dies on it. Start 2: tries it once more (crashRetries: 1), dies again.
  const first = await runUntilDeath(cfgPath, env);
  assert.equal(first.signal, 'SIGKILL', first.logs.slice(-2000));
  assert.match(first.logs, /fleet: applying configuration/, first.logs.slice(-2000));
  const second = await runUntilDeath(cfgPath, env);
  assert.equal(second.signal, 'SIGKILL', second.logs.slice(-2000));
  assert.match(
    second.logs,
    /"windows":2,[^\n]*agent started/,
    `the second start ran version 1: ${second.logs.slice(-2000)}`,
  );
  const state = JSON.parse(readFileSync(join(dataDir, 'fleet-state.json'), 'utf8'));
  assert.equal(state.pending.version, 1);
  assert.equal(state.pending.starts, 1);

  // Start 3: the old configuration, reported as rolled back; the retained version 1 is not taken again.
  const agent = await startedOnOldConfig(cfgPath, env, 2);
  assert.deepEqual((await agent.status()).fleet.lastKnownGood, { version: 0, hash: 'local' });
  // Still alive and listening on its downlink: a later version (that does not crash) is applied.
  await push(pub, id, signed(privateKey, id, 2, { windows: [w1, { name: 'w3', type: 'count', count: 3 }] }));
  await report(agent, 2, 'applied');
  assert.equal(agent.proc.exitCode, null);

  // An uplink that cannot connect is unhealthy too: rolled back, and the report reaches the collector
  // once the old uplink is connected again.
  const cap = await captureUplink(services().mosquitto.url, id);
  clients.push(cap.client);
  const dead = `mqtt://127.0.0.1:${await deadPort()}`;
  await push(pub, id, signed(privateKey, id, 3, { uplink: { urls: [dead] } }));
  const back = await waitFor(
    'rolled_back for version 3 published on the uplink',
    () => cap.captured.status.find((s) => s.fleet?.version === 3 && s.fleet.state === 'rolled_back'),
    { timeoutMs: 60_000 },
  );
  assert.match(back.fleet.reason, /^unhealthy after 5000 ms: uplink not connected/);
  assert.deepEqual(back.fleet.lastKnownGood, (await agent.status()).fleet.lastKnownGood);
  assert.equal(back.fleet.lastKnownGood.version, 2);
  // The operator's view: `edgeflow-agent status`.
  const cli = spawnTracked(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'agent/main.ts'), 'status', '--url', agent.url, '--interval', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  cli.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const [code] = await once(cli, 'exit');
  assert.equal(code, 0);
  assert.match(
    out,
    /^fleet {8}version 3 rolled_back \(rollout test-3\), running last-known-good 2: unhealthy after 5000 ms: uplink not connected/m,
  );
  assert.equal(await agent.stop('SIGTERM'), 0);
});
