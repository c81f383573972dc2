// Smoke test of the test bed's Mosquitto with the client agent and uplink use: mqtt.js publishes at
// QoS 1 and mosquitto_sub, a separate process and client library, receives it from the other side.
// Readiness without sleeping: a retained probe is published first, so mosquitto_sub's first line
// (the retained message, delivered right after its SUBACK) proves it is subscribed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import mqtt from 'mqtt';
import { services, uniqueName } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('mqtt.js QoS 1 publish is received by mosquitto_sub', async () => {
  const url = new URL(services().mosquitto.url);
  const base = `edgeflow-test/${uniqueName('smoke').replaceAll('.', '-')}`;
  const client = await mqtt.connectAsync(url.toString(), {
    clientId: uniqueName('smoke'),
    connectTimeout: 10_000,
  });
  cleanups.push(() => client.endAsync());

  await client.publishAsync(`${base}/probe`, 'ready', { qos: 1, retain: true });
  cleanups.push(() => client.publishAsync(`${base}/probe`, '', { qos: 1, retain: true })); // clear the retained probe

  const payloads = ['{"v":1,"n":1}', '{"v":1,"n":2}', '{"v":1,"n":3,"t":"grüße"}'];
  const sub = spawn(
    'mosquitto_sub',
    [
      '-h',
      url.hostname,
      '-p',
      url.port || '1883',
      '-q',
      '1',
      '-v',
      '-t',
      `${base}/#`,
      '-C',
      String(payloads.length + 1),
      '-W',
      '30',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanups.push(async () => sub.kill());
  let stderr = '';
  sub.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = once(sub, 'exit');
  const lines: string[] = [];
  createInterface({ input: sub.stdout }).on('line', (l) => lines.push(l));

  await waitFor(
    'mosquitto_sub to receive the retained probe',
    () => lines.length >= 1 || sub.exitCode !== null,
    {
      timeoutMs: 15_000,
    },
  );
  assert.equal(lines[0], `${base}/probe ready`, `mosquitto_sub: ${stderr}`);

  for (const p of payloads) {
    const packet = await client.publishAsync(`${base}/data`, p, { qos: 1 });
    assert.equal(packet?.cmd, 'publish'); // resolved after the broker's PUBACK
  }

  const [code] = await exited;
  assert.equal(code, 0, `mosquitto_sub exited ${code}: ${stderr}`);
  assert.deepEqual(
    lines.slice(1),
    payloads.map((p) => `${base}/data ${p}`),
  );
});
