// Smoke test of the test bed's Mosquitto with the client agent and uplink use: mqtt.js publishes at
// QoS 1 and mosquitto_sub, a separate process and client library, receives it from the other side.
// Readiness without sleeping: a retained probe is published first, so mosquitto_sub's first line
// (the retained message, delivered right after its SUBACK) proves it is subscribed.
// Also the private gateway broker (helpers/mosquitto.ts) the outage tests restart: a persistent session
// and the messages queued for it survive restart(), also those published after the restart before the
// subscriber is back (the race test/agent/outage.test.ts lost when the broker could not write its file).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import mqtt, { type IConnackPacket } from 'mqtt';
import { startMosquitto } from '../helpers/mosquitto.ts';
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

test('private gateway broker: a persistent session and its queued messages survive restart()', async () => {
  const broker = await startMosquitto({ gateway: true });
  cleanups.push(() => broker.stop());
  const clientId = uniqueName('capture');
  const opts = { clientId, clean: false, reconnectPeriod: 0 };
  const first = await mqtt.connectAsync(broker.url, opts);
  await first.subscribeAsync('t/#', { qos: 1 });
  await first.endAsync(); // offline from here on: what follows is queued for its session

  const publish = async (payload: string) => {
    const pub = await mqtt.connectAsync(broker.url, { clientId: uniqueName('pub'), reconnectPeriod: 0 });
    await pub.publishAsync('t/x', payload, { qos: 1 }); // resolved by the broker's PUBACK
    await pub.endAsync();
  };
  await publish('queued before the restart');
  await broker.stop();
  await broker.restart();
  // The agent reconnecting before the collector's stand-in: acknowledged by the broker, so it must be
  // kept for the session rather than dropped for want of a subscriber.
  await publish('published after the restart');

  const got: string[] = [];
  const again = mqtt.connect(broker.url, opts);
  cleanups.push(() => again.endAsync(true));
  // Listening before the CONNACK: the broker sends the queue right behind it.
  again.on('message', (_topic, payload) => got.push(payload.toString()));
  const connack = await new Promise<IConnackPacket>((resolve) => again.once('connect', resolve));
  assert.equal(connack.sessionPresent, true, 'session forgotten by the restart');
  await waitFor('both queued messages', () => got.length >= 2, { timeoutMs: 15_000 }).catch((e) => {
    throw new Error(`${(e as Error).message}; got ${JSON.stringify(got)}`);
  });
  assert.deepEqual(got, ['queued before the restart', 'published after the restart']);
});
