// Issue 4 "Proof": the agent is SIGKILLed at random moments while the simulator publishes over MQTT, and
// restarted, 20 times. Upstream, the sum of summary counts equals what the simulator sent, and no window
// is counted twice (every re-sent copy of a summary revision is identical). The sensor broker runs the
// gateway config we ship (deploy/mosquitto/gateway.conf): without it Mosquitto drops queued messages.
// The same with the sensors publishing to the agent's embedded broker (source type mqtt-broker): there
// the simulator's mqtt.js clients reconnect to the restarted agent and re-send what was not PUBACKed.
// Their backlog arrives only after they reconnect (every 1 s), so the idle timeout there is 5 s: with 1 s,
// the restarted agent rightly takes the silent fleet for idle, advances the watermark and drops the
// backlog as late (which the first version of this test did). mqtt.js re-sends un-acked messages one
// per PUBACK after a reconnect, and the agent acks at its checkpoint (200 ms here): the simulator's
// window is 40 messages, as small firmware clients have, so a replay takes seconds, not a minute.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { type AgentProcess, startAgent, tempDir, writeConfig } from '../helpers/agent-process.ts';
import { type Broker, freePort, startMosquitto } from '../helpers/mosquitto.ts';
import { runSim } from '../helpers/sim-run.ts';
import { captureUplink } from '../helpers/uplink-capture.ts';
import { waitFor } from '../helpers/wait.ts';

const KILLS = Number(process.env.EDGEFLOW_CRASH_KILLS ?? 20);
const BROKER_KILLS = Number(process.env.EDGEFLOW_CRASH_KILLS ?? 10);
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test(`SIGKILL ${KILLS} times during a simulated MQTT run: every reading counted exactly once upstream`, {
  timeout: 240_000,
}, async () => {
  const sensors = await startMosquitto({ gateway: true });
  cleanups.push(() => sensors.stop());
  await crashRun(KILLS, sensors.url, {
    type: 'mqtt',
    name: 'sensors',
    url: sensors.url,
    topics: ['plant/+/+'],
    topicPattern: 'plant/{device}/{metric}',
    format: 'json',
  });
});

test(`SIGKILL ${BROKER_KILLS} times while sensors publish to the agent's embedded broker: every reading counted exactly once`, {
  timeout: 240_000,
}, async () => {
  const port = await freePort();
  await crashRun(
    BROKER_KILLS,
    `mqtt://127.0.0.1:${port}`,
    {
      type: 'mqtt-broker',
      name: 'sensors',
      listen: `127.0.0.1:${port}`,
      topicPattern: 'plant/{device}/{metric}',
      format: 'json',
      allowAnonymous: true, // this test is about crashes; sensor logins: agent/sources/mqtt-broker.security.test.ts
    },
    '5s',
    ['--mqtt-max-in-flight', '40'],
  );
});

async function crashRun(
  KILLS: number,
  sensorsUrl: string,
  source: Record<string, unknown>,
  idleTimeout = '1s',
  simArgs: string[] = [],
): Promise<void> {
  const upstream: Broker = await startMosquitto();
  cleanups.push(() => upstream.stop());
  const id = `crash-${process.pid}-${source.type}`;
  const cap = await captureUplink(upstream.url, id);
  const dataDir = tempDir();
  const cfg = writeConfig(tempDir(), {
    agent: { id, dataDir },
    sources: [source],
    watermark: { maxOutOfOrder: '200ms', idleTimeout },
    windows: [
      { name: 'w1s', type: 'tumbling', size: '1s', aggregates: ['count', 'sum', 'min', 'max'] },
      { name: 'hop', type: 'hopping', size: '2s', slide: '1s', aggregates: ['count'] },
    ],
    uplink: { urls: [upstream.url], batch: { maxItems: 100, maxDelay: '100ms' } },
    checkpoint: { interval: '200ms' },
    http: { listen: '127.0.0.1:0' },
  });
  let agent: AgentProcess = await startAgent(cfg);
  cleanups.push(() => agent.stop('SIGKILL'));
  await waitFor('source up', async () => (await agent.status()).sources.sensors?.state === 'up');

  // The simulator publishes event-timestamped JSON with QoS 1 for the whole run.
  const durationS = Math.max(10, KILLS * 3); // a restart (tsx start-up) takes ~2 s
  const sim = runSim(
    [
      '--devices',
      '4',
      '--rate',
      '10',
      '--metrics',
      'temperature,current',
      '--duration',
      `${durationS}s`,
      '--seed',
      '21',
      '--mqtt',
      sensorsUrl,
      '--topic-pattern',
      'plant/{device}/{metric}',
      '--format',
      'json',
      '--qos',
      '1',
      ...simArgs,
    ],
    { timeoutMs: 200_000 },
  );
  let simDone = false;
  void sim.then(
    () => (simDone = true),
    () => (simDone = true),
  );

  let kills = 0;
  while (kills < KILLS && !simDone) {
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 700)); // a random moment, not a synchronisation
    await agent.stop('SIGKILL');
    kills++;
    agent = await startAgent(cfg);
  }
  const report = await sim;
  assert.ok(kills >= Math.min(KILLS, 10), `only ${kills} kills happened before the simulator finished`);

  const expected = report.readingsSent;
  const total = () =>
    [...cap.captured.summaries.values()]
      .filter((s) => s.window.name === 'w1s')
      .reduce((a, s) => a + s.count, 0);
  await waitFor(`upstream w1s counts to reach ${expected}`, () => total() === expected || undefined, {
    timeoutMs: 60_000,
  }).catch(async (e) => {
    const st = await agent.status().catch(() => null);
    throw new Error(
      `${(e as Error).message}; got ${total()} after ${kills} kills; agent ${JSON.stringify(st)}`,
    );
  });
  // Per device and metric as well.
  const per: Record<string, number> = {};
  for (const s of cap.captured.summaries.values())
    if (s.window.name === 'w1s')
      per[`${s.device}/${s.metric}`] = (per[`${s.device}/${s.metric}`] ?? 0) + s.count;
  assert.deepEqual(per, report.sent.byDeviceMetric);
  // Hopping windows see every reading twice (size = 2 × slide); their last window closes a second later.
  const hop = () =>
    [...cap.captured.summaries.values()]
      .filter((s) => s.window.name === 'hop')
      .reduce((a, s) => a + s.count, 0);
  await waitFor(`upstream hop counts to reach ${2 * expected}`, () => hop() === 2 * expected || undefined, {
    timeoutMs: 30_000,
  }).catch((e) => {
    throw new Error(`${(e as Error).message}; got ${hop()}`);
  });
  // No window counted twice: every copy of an (id, rev) that arrived more than once is identical.
  const seen = new Map<string, string>();
  for (const s of cap.captured.summaryLog) {
    const key = `${s.id}/${s.rev}`;
    const body = JSON.stringify(s);
    const prev = seen.get(key);
    if (prev !== undefined) assert.equal(body, prev, `summary ${key} re-sent with different content`);
    seen.set(key, body);
  }
  await waitFor('outbox drained', async () => (await agent.status()).outbox.items === 0);
  await cap.close();
}
