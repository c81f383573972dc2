// Issue 3 "Proof", integration: edgeflow-sim → (socat pty | Mosquitto | the agent's embedded broker)
// → edgeflow-agent process → real MQTT broker standing in for the collector. Every reading the
// simulator sent is accounted for in the summaries' counts; malformed frames in the agent's counters.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type AgentProcess,
  metricValue,
  startAgent,
  tempDir,
  writeConfig,
} from '../helpers/agent-process.ts';
import { killAll } from '../helpers/processes.ts';
import { openPtyPair } from '../helpers/pty.ts';
import { services } from '../helpers/services.ts';
import { runSim } from '../helpers/sim-run.ts';
import { captureUplink } from '../helpers/uplink-capture.ts';
import { waitFor } from '../helpers/wait.ts';

const BROKER = () => services().mosquitto.url;

function baseConfig(agentId: string, dataDir: string, sources: unknown[]) {
  return {
    agent: { id: agentId, dataDir },
    sources,
    watermark: { maxOutOfOrder: '500ms', idleTimeout: '1s' },
    windows: [
      {
        name: 'all-1s',
        match: { device: '*', metric: '*' },
        type: 'tumbling',
        size: '1s',
        aggregates: ['count', 'min', 'max', 'mean', 'sum', 'stddev', 'first', 'last', 'p50', 'p95'],
      },
    ],
    rules: [],
    uplink: { urls: [BROKER()], batch: { maxItems: 200, maxDelay: '200ms' } },
    checkpoint: { interval: '200ms' },
    http: { listen: '127.0.0.1:0' },
  };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const uniq = () => `it-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

describe('agent pipeline, end to end through real transports', () => {
  let agent: AgentProcess | undefined;
  after(async () => {
    await agent?.stop('SIGKILL');
    await killAll();
  });

  test('serial: sim → socat pty → agent → broker; counts add up, malformed counted', async () => {
    const id = uniq();
    const pty = await openPtyPair();
    const cap = await captureUplink(BROKER(), id);
    try {
      const cfg = writeConfig(
        tempDir(),
        baseConfig(id, tempDir(), [
          { type: 'serial', name: 'line-a', path: pty.b, baudRate: 921600, format: 'json' },
        ]),
      );
      agent = await startAgent(cfg);
      await waitFor(
        'serial source up',
        async () => (await agent!.status()).sources['line-a']?.state === 'up',
      );
      const report = await runSim([
        '--devices',
        '4',
        '--rate',
        '20',
        '--metrics',
        'temperature,humidity',
        '--duration',
        '4s',
        '--seed',
        '11',
        '--serial',
        pty.a,
        '--baud-rate',
        '921600',
        '--format',
        'json',
        '--malformed',
        '0.03',
      ]);
      assert.ok(report.readingsSent > 500, `sim sent ${report.readingsSent}`);
      assert.ok(report.malformed > 0);
      await waitFor(
        `summaries to count ${report.readingsSent} readings`,
        () => cap.totalCount() === report.readingsSent || undefined,
        { timeoutMs: 30_000, progress: cap.totalCount },
      );
      const m = await agent.metrics();
      assert.equal(metricValue(m, 'edgeflow_agent_bad_frames_total', { source: 'line-a' }), report.malformed);
      assert.equal(
        metricValue(m, 'edgeflow_agent_readings_in_total', { source: 'line-a' }),
        report.readingsSent,
      );
      // per device/metric too
      const per: Record<string, number> = {};
      for (const s of cap.captured.summaries.values())
        per[`${s.device}/${s.metric}`] = (per[`${s.device}/${s.metric}`] ?? 0) + s.count;
      assert.deepEqual(per, report.sent.byDeviceMetric);
      await waitFor('outbox drained', async () => (await agent!.status()).outbox.items === 0);
      assert.equal(await agent.stop('SIGTERM'), 0);
      agent = undefined;
    } finally {
      await cap.close();
      await pty.close();
    }
  });

  test('mqtt: sim → Mosquitto → agent (QoS 1, topicPattern) → broker; counts add up', async () => {
    const id = uniq();
    const prefix = `plant-${id}`;
    const cap = await captureUplink(BROKER(), id);
    try {
      const cfg = writeConfig(
        tempDir(),
        baseConfig(id, tempDir(), [
          {
            type: 'mqtt',
            name: 'floor',
            url: BROKER(),
            topics: [`${prefix}/+/+`],
            topicPattern: `${prefix}/{device}/{metric}`,
            format: 'number',
          },
        ]),
      );
      agent = await startAgent(cfg);
      await waitFor('mqtt source up', async () => (await agent!.status()).sources.floor?.state === 'up');
      const report = await runSim([
        '--devices',
        '3',
        '--rate',
        '20',
        '--metrics',
        'temperature,current',
        '--duration',
        '3s',
        '--seed',
        '5',
        '--mqtt',
        BROKER(),
        '--topic-pattern',
        `${prefix}/{device}/{metric}`,
        '--format',
        'number',
        '--qos',
        '1',
      ]);
      assert.ok(report.readingsSent > 100);
      await waitFor(
        `summaries to count ${report.readingsSent} readings`,
        () => cap.totalCount() === report.readingsSent || undefined,
        { timeoutMs: 30_000, progress: cap.totalCount },
      );
      assert.equal(await agent.stop('SIGTERM'), 0);
      agent = undefined;
    } finally {
      await cap.close();
    }
  });

  test("embedded broker: sim → agent's aedes broker → agent → broker; counts add up", async () => {
    const id = uniq();
    const port = await freePort();
    const cap = await captureUplink(BROKER(), id);
    try {
      // The sensors log in (issue 12 item 1: the embedded broker refuses anonymous sensors by default).
      const secrets = tempDir();
      const passwordFile = join(secrets, 'sensor-password');
      writeFileSync(passwordFile, 'sensor-secret\n', { mode: 0o600 });
      const cfg = writeConfig(
        tempDir(),
        baseConfig(id, tempDir(), [
          {
            type: 'mqtt-broker',
            name: 'gw-broker',
            listen: `127.0.0.1:${port}`,
            topicPattern: 'sensors/{device}/{metric}',
            format: 'number',
            username: 'sensors',
            passwordFile,
          },
        ]),
      );
      agent = await startAgent(cfg);
      await waitFor(
        'broker source up',
        async () => (await agent!.status()).sources['gw-broker']?.state === 'up',
      );
      const report = await runSim([
        '--devices',
        '3',
        '--rate',
        '20',
        '--metrics',
        'vibration',
        '--duration',
        '3s',
        '--seed',
        '9',
        '--mqtt',
        `mqtt://127.0.0.1:${port}`,
        '--topic-pattern',
        'sensors/{device}/{metric}',
        '--format',
        'number',
        '--qos',
        '1',
        '--mqtt-username',
        'sensors',
        '--mqtt-password-file',
        passwordFile,
      ]);
      assert.ok(report.readingsSent > 100);
      await waitFor(
        `summaries to count ${report.readingsSent} readings`,
        () => cap.totalCount() === report.readingsSent || undefined,
        { timeoutMs: 30_000, progress: cap.totalCount },
      );
      assert.equal(await agent.stop('SIGTERM'), 0);
      agent = undefined;
    } finally {
      await cap.close();
    }
  });
});
