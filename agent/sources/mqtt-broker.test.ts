// Component tests: mqtt.js clients (the "sensors") publish to the embedded broker on port 0.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { Registry } from 'prom-client';
import { systemClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MqttBrokerSource, type MqttBrokerSourceOptions } from './mqtt-broker.ts';
import type { RawFrame } from './source.ts';

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-broker-'));
const sources: MqttBrokerSource[] = [];
const clients: MqttClient[] = [];

async function broker(opts: Partial<MqttBrokerSourceOptions> = {}) {
  const frames: RawFrame[] = [];
  const bad: string[] = [];
  const src = new MqttBrokerSource(
    // Anonymous unless a test sets credentials: these tests are about frames and acks; logins, ACLs and
    // limits are in mqtt-broker.security.test.ts.
    {
      name: 'sensors',
      listen: '127.0.0.1:0',
      topicPattern: 'sensors/{device}/{metric}',
      allowAnonymous: true,
      ...opts,
    },
    { log: nullLogger(), clock: systemClock, metrics: new Registry() },
  );
  sources.push(src);
  await src.start((f) => frames.push(f), { onBadFrame: (r) => bad.push(r) });
  const url = `mqtt://${src.address()}`;
  const sensor = async (o: mqtt.IClientOptions = {}) => {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...o });
    clients.push(c);
    return c;
  };
  return { src, frames, bad, sensor, url };
}

/** Tracks whether a publish's PUBACK has arrived. */
function tracked(p: Promise<unknown>) {
  const t = { done: false, promise: Promise.resolve() };
  t.promise = p.then(() => {
    t.done = true;
  });
  return t;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  for (const s of sources.splice(0)) await s.stop();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A raw MQTT 3.1.1 connection (mqtt-packet), to send exactly the packets a test needs (DUP flags). */
async function rawSensor(address: string, clientId: string) {
  const [host, port] = address.split(':') as [string, string];
  const sock = netConnect(Number(port), host);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => packets.push(p));
  sock.on('data', (d) => parser.parse(d));
  sock.on('error', () => {});
  sock.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId,
      clean: true,
      keepalive: 30,
    }),
  );
  await waitFor('connack', () => packets.some((p) => p.cmd === 'connack'));
  return {
    packets,
    publish(messageId: number, topic: string, payload: string, dup: boolean) {
      sock.write(
        mqttPacket.generate({ cmd: 'publish', qos: 1, dup, retain: false, messageId, topic, payload }),
      );
    },
    pubacks: () =>
      packets.filter((p) => p.cmd === 'puback').map((p) => (p as mqttPacket.IPubackPacket).messageId),
    close: () => sock.destroy(),
  };
}

describe('mqtt-broker source (aedes)', { timeout: 120_000 }, () => {
  it("after an agent restart, a sensor's resend of a message already in the checkpoint is acked, not counted again", async () => {
    // Before the crash: the frame's reading was checkpointed (its key saved), the PUBACK never left.
    const b1 = await broker();
    const s = await b1.sensor({ clientId: 'sensor-7' });
    void s.publishAsync('sensors/s1/temperature', '21.5', { qos: 1 }).catch(() => {});
    await waitFor('frame', () => b1.frames.length === 1);
    const key = b1.frames[0]!.key!;
    assert.match(key, /^\d+:[\w-]{22}$/, 'packet id and content hash');
    const messageId = Number(key.split(':')[0]);
    await b1.src.stop();

    const b2 = await broker();
    b2.src.restoreDelivered([key]);
    const raw = await rawSensor(b2.src.address()!, 'sensor-7');
    try {
      // The resend, without DUP as mqtt.js sends it.
      raw.publish(messageId, 'sensors/s1/temperature', '21.5', false);
      await waitFor('puback', () => raw.pubacks().includes(messageId));
      assert.equal(b2.frames.length, 0, 'not delivered again');
      assert.equal(b2.src.status().redeliveriesSkippedAfterRestart, 1);
      // The key matches once; after it, the same packet id and content is a new reading, and so is a
      // message whose content differs, or the same content from another sensor.
      raw.publish(messageId, 'sensors/s1/temperature', '21.5', true);
      raw.publish(messageId + 1, 'sensors/s1/temperature', '22.0', true);
      await waitFor('two frames', () => b2.frames.length === 2);
      const other = await rawSensor(b2.src.address()!, 'sensor-8');
      b2.src.restoreDelivered([key]);
      other.publish(messageId, 'sensors/s1/temperature', '21.5', true);
      await waitFor('third frame', () => b2.frames.length === 3);
      other.close();
      assert.equal(b2.src.status().redeliveriesSkippedAfterRestart, 1);
      // Restored keys expire after the grace period.
      const b3 = await broker({ redeliveryGraceMs: 50 });
      b3.src.restoreDelivered([key]);
      await new Promise((r) => setTimeout(r, 100)); // let the grace period pass: this is what is tested
      const late = await rawSensor(b3.src.address()!, 'sensor-7');
      late.publish(messageId, 'sensors/s1/temperature', '21.5', true);
      await waitFor('delivered after the grace period', () => b3.frames.length === 1);
      late.close();
    } finally {
      raw.close();
    }
  });

  it('turns a matching PUBLISH into a frame with topic fields, status up', async () => {
    const b = await broker();
    assert.equal(b.src.status().state, 'up');
    assert.match(String(b.src.address()), /^127\.0\.0\.1:\d+$/);
    const s = await b.sensor();
    await s.publishAsync('sensors/s1/temperature', '21.5', { qos: 0 });
    await waitFor('frame', () => b.frames.length === 1);
    assert.equal(b.frames[0]!.payload.toString(), '21.5');
    assert.deepEqual(b.frames[0]!.fields, { device: 's1', metric: 'temperature' });
    assert.equal(b.frames[0]!.ack, undefined, 'QoS 0 has nothing to acknowledge');
    assert.equal(b.src.status().framesIn, 1);
  });

  it('withholds the QoS 1 PUBACK until frame.ack() without blocking the connection', async () => {
    const b = await broker();
    const s = await b.sensor();
    const p = tracked(s.publishAsync('sensors/s1/temperature', '1', { qos: 1 }));
    await waitFor('frame', () => b.frames.length === 1);
    // The connection keeps flowing: a later message arrives while the first is un-acked.
    await s.publishAsync('sensors/s1/temperature', '2', { qos: 0 });
    await waitFor('second frame', () => b.frames.length === 2);
    assert.equal(p.done, false, 'no PUBACK before the checkpoint');
    b.frames[0]!.ack!();
    await p.promise;
  });

  it('sends PUBACKs in arrival order even when acked out of order [MQTT-4.6.0-2]', async () => {
    const b = await broker();
    const s = await b.sensor();
    const ps = ['1', '2', '3'].map((v) => tracked(s.publishAsync('sensors/s1/m', v, { qos: 1 })));
    await waitFor('3 frames before any ack', () => b.frames.length === 3);
    b.frames[2]!.ack!();
    b.frames[0]!.ack!();
    await ps[0]!.promise;
    // 1 acked and sent; 3 acked but behind 2. A QoS 1 round trip on a second client shows the broker
    // processed everything written so far.
    const probe = await b.sensor();
    await probe.publishAsync('other/topic', 'x', { qos: 1 });
    assert.deepEqual(
      ps.map((p) => p.done),
      [true, false, false],
    );
    b.frames[1]!.ack!();
    await Promise.all(ps.map((p) => p.promise));
  });

  it('counts topic_mismatch and acknowledges it at once; a packet over maxPacketSize closes the connection', async () => {
    const b = await broker({ maxPacketSize: 64 });
    const s = await b.sensor();
    await s.publishAsync('elsewhere/x', '1', { qos: 1 });
    assert.deepEqual(b.bad, ['topic_mismatch']);
    const closed = new Promise((r) => s.stream.once('close', r));
    s.publish('sensors/s1/m', 'x'.repeat(100), { qos: 1 });
    await closed;
    assert.equal(b.frames.length, 0);
    assert.deepEqual(b.src.status().badFrames, { topic_mismatch: 1 });
    assert.deepEqual(b.src.status().refused, { packet_too_large: 1 });
  });

  it('requires the configured username and password', async () => {
    const pw = join(dir, 'pw');
    writeFileSync(pw, 's3cret\n');
    const b = await broker({ username: 'sensor', passwordFile: pw, allowAnonymous: false });
    await assert.rejects(
      mqtt.connectAsync(b.url, { username: 'sensor', password: 'wrong', reconnectPeriod: 0 }),
    );
    await assert.rejects(mqtt.connectAsync(b.url, { reconnectPeriod: 0 }));
    const ok = await b.sensor({ username: 'sensor', password: 's3cret' });
    await ok.publishAsync('sensors/s1/m', '1', { qos: 0 });
    await waitFor('frame', () => b.frames.length === 1);
  });

  it('pause() stops reading from sensors, resume() continues', async () => {
    const b = await broker();
    const s = await b.sensor();
    b.src.pause();
    s.publish('sensors/s1/m', '1', { qos: 0 });
    await new Promise((r) => setTimeout(r, 200)); // bounded observation window
    assert.equal(b.frames.length, 0);
    b.src.resume();
    await waitFor('frame after resume', () => b.frames.length === 1);
  });

  it('an ack after the sensor disconnected is dropped; the sensor resends on reconnect', async () => {
    const b = await broker();
    const s = await mqtt.connectAsync(b.url, {
      clientId: 'sensor-resend',
      clean: false,
      reconnectPeriod: 50,
    });
    clients.push(s);
    const p = tracked(s.publishAsync('sensors/s1/m', '7', { qos: 1 }));
    await waitFor('frame', () => b.frames.length === 1);
    s.stream.destroy(); // connection lost before the checkpoint
    await waitFor('resent after reconnect', () => b.frames.length === 2);
    assert.equal(b.src.status().clients, 1, 'the dead connection is forgotten');
    b.frames[0]!.ack!(); // stale: must not write to the old connection nor throw
    assert.equal(p.done, false);
    b.frames[1]!.ack!();
    await p.promise;
    assert.equal(b.frames[1]!.payload.toString(), '7');
  });

  it('reports a taken port as down and retries', async () => {
    const a = await broker();
    const port = Number(a.src.address()!.split(':')[1]);
    const src = new MqttBrokerSource(
      {
        name: 'dup',
        listen: `127.0.0.1:${port}`,
        topicPattern: 'sensors/{device}/{metric}',
        allowAnonymous: true,
        reconnectMinMs: 50,
        reconnectMaxMs: 100,
      },
      { log: nullLogger(), clock: systemClock, metrics: new Registry() },
    );
    sources.push(src);
    await src.start(() => {});
    assert.equal(src.status().state, 'down');
    assert.match(String(src.status().lastError), /EADDRINUSE/);
    await a.src.stop();
    await waitFor('listening after the port is free', () => src.status().state === 'up');
  });
});
