// Issue 3, "Operating it": SIGHUP reloads the configuration without losing window state where the window
// definition did not change; an invalid configuration on SIGHUP is refused and the agent keeps running.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { type AgentProcess, startAgent, tempDir, writeConfig } from '../helpers/agent-process.ts';
import { freePort } from '../helpers/mosquitto.ts';
import { services } from '../helpers/services.ts';
import { captureUplink } from '../helpers/uplink-capture.ts';
import { waitFor } from '../helpers/wait.ts';

let agent: AgentProcess | undefined;
after(async () => {
  await agent?.stop('SIGKILL');
});

test('SIGHUP: unchanged windows keep their state, new windows start empty, bad config is refused', async () => {
  const id = `reload-${process.pid}`;
  const port = await freePort();
  const cap = await captureUplink(services().mosquitto.url, id);
  const w1 = { name: 'w1', type: 'tumbling', size: '10s', aggregates: ['count', 'sum'] };
  const config = (windows: unknown[]) => ({
    agent: { id, dataDir: tempDir() },
    sources: [
      {
        type: 'mqtt-broker',
        name: 'gw',
        listen: `127.0.0.1:${port}`,
        topicPattern: 'sensors/{device}/{metric}',
        format: 'json',
        allowAnonymous: true, // this test is about reloads; sensor logins: mqtt-broker.security.test.ts
      },
    ],
    watermark: { maxOutOfOrder: '0s', idleTimeout: '10m' },
    windows,
    uplink: { urls: [services().mosquitto.url], batch: { maxItems: 50, maxDelay: '100ms' } },
    checkpoint: { interval: '200ms' },
    http: { listen: '127.0.0.1:0' },
  });
  const dir = tempDir();
  const a = config([w1]);
  const cfgPath = writeConfig(dir, a);
  agent = await startAgent(cfgPath);
  const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `sensor-${id}` });
  try {
    const base = Math.floor(Date.now() / 10_000) * 10_000 - 120_000;
    const send = async (offsetS: number, value: number) =>
      sensor.publishAsync('sensors/dev1/temperature', JSON.stringify({ value, ts: base + offsetS * 1000 }), {
        qos: 1,
      });
    for (let i = 1; i <= 5; i++) await send(i, i);
    await waitFor('5 readings in', async () => (await agent!.status()).counters.readingsIn === 5);

    // Reload: same w1 (same data dir), one window more.
    writeFileSync(cfgPath, stringify({ ...a, windows: [w1, { ...w1, name: 'w2' }] }));
    agent.proc.kill('SIGHUP');
    await waitFor('reload logged', () => agent!.logs.some((l) => l.includes('configuration reloaded')));
    for (let i = 6; i <= 9; i++) await send(i, i);
    await send(60, 0); // advances the watermark past both windows at `base`
    const at = (name: string) =>
      [...cap.captured.summaries.values()].find((s) => s.window.name === name && s.window.start === base);
    const s1 = await waitFor('w1 summary', () => at('w1'));
    const s2 = await waitFor('w2 summary', () => at('w2'));
    assert.equal(s1.count, 9, 'w1 kept the 5 readings from before the reload');
    assert.equal(s1.sum, 45);
    assert.equal(s2.count, 4, 'w2 only saw readings after it was added');

    // An invalid config on SIGHUP is refused; the agent keeps running with the old one.
    writeFileSync(cfgPath, 'agent: { id: "no spaces allowed" }\n');
    agent.proc.kill('SIGHUP');
    await waitFor('reload refused logged', () => agent!.logs.some((l) => l.includes('reload refused')));
    const health = await fetch(`${agent.url}/healthz`);
    assert.equal(health.status, 200);
    await send(61, 1);
    await waitFor('still processing', async () => (await agent!.status()).counters.readingsIn === 11);
    assert.equal(await agent.stop('SIGTERM'), 0);
    agent = undefined;
  } finally {
    await sensor.endAsync();
    await cap.close();
  }
});
