// Issue 12 item 1: the embedded sensor broker is closed by default. Real sockets on loopback, port 0;
// mqtt.js as the sensor, mqtt-packet for the packets a client library would not send.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { Registry } from 'prom-client';
import { systemClock } from '../../shared/clock.ts';
import { addAgent } from '../../shared/credentials.ts';
import { nullLogger } from '../../shared/log.ts';
import { closed, publishHeader } from '../../test/helpers/mqtt-raw.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MqttBrokerSource, type MqttBrokerSourceOptions } from './mqtt-broker.ts';
import type { RawFrame } from './source.ts';

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-broker-sec-'));
const sources: MqttBrokerSource[] = [];
const clients: MqttClient[] = [];
const sockets: Socket[] = [];
/** Cheap scrypt for tests (the file format and code path are the production ones). */
const FAST = { N: 2 ** 10, r: 8, p: 1, keylen: 32 };

async function broker(opts: Partial<MqttBrokerSourceOptions> = {}) {
  const frames: RawFrame[] = [];
  const bad: string[] = [];
  const registry = new Registry();
  const src = new MqttBrokerSource(
    { name: 'sensors', listen: '127.0.0.1:0', topicPattern: 'sensors/{device}/{metric}', ...opts },
    { log: nullLogger(), clock: systemClock, metrics: registry },
  );
  sources.push(src);
  // Frames are acknowledged at once, as if checkpointed (the PUBACK waits for that: mqtt-broker.ts).
  await src.start(
    (f) => {
      frames.push(f);
      f.ack?.();
    },
    { onBadFrame: (r) => bad.push(r) },
  );
  const url = `mqtt://${src.address()}`;
  const sensor = async (o: mqtt.IClientOptions = {}) => {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...o });
    clients.push(c);
    return c;
  };
  return { src, frames, bad, sensor, url, registry };
}

/** CONNACK return code for a CONNECT with these credentials (0 = accepted). */
async function connackCode(url: string, username?: string, password?: string): Promise<number> {
  try {
    const c = await mqtt.connectAsync(url, {
      reconnectPeriod: 0,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
    });
    await c.endAsync(true);
    return 0;
  } catch (e) {
    return Number((e as { code?: unknown }).code);
  }
}

function rawSocket(address: string): Promise<Socket> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const s = netConnect(Number(port), host, () => resolve(s));
    s.on('error', reject);
    sockets.push(s);
  });
}

/** The source's refusal counters by reason (its status() extension). */
function refused(src: MqttBrokerSource): Record<string, number> {
  const r = src.status().refused;
  return r && typeof r === 'object' ? { ...r } : {};
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of clients.splice(0)) await c.endAsync(true);
  for (const s of sources.splice(0)) await s.stop();
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('mqtt-broker source: closed by default (issue 12 item 1)', { timeout: 60_000 }, () => {
  it('refuses a CONNECT without credentials unless allowAnonymous (CONNACK 5)', async () => {
    const pw = join(dir, 'pw');
    writeFileSync(pw, 's3cret\n');
    const b = await broker({ username: 'sensor', passwordFile: pw });
    assert.equal(await connackCode(b.url), 5);
    assert.equal(await connackCode(b.url, 'sensor', 'nope'), 4);
    assert.equal(await connackCode(b.url, 'sensor', 's3cret'), 0);
    // A source built with no credentials at all (config.ts refuses that) still refuses everyone.
    const none = await broker({});
    assert.equal(await connackCode(none.url), 5);
    assert.equal(await connackCode(none.url, 'x', 'y'), 5);
    const open = await broker({ allowAnonymous: true });
    assert.equal(await connackCode(open.url), 0);
    assert.deepEqual(refused(b.src), { no_credentials: 1, bad_credentials: 1 });
  });

  it('per-sensor credentials: each sensor logs in with its own secret and publishes its own device only', async () => {
    const file = join(dir, 'sensors.json');
    const s1 = await addAgent(file, 's1', FAST);
    const s2 = await addAgent(file, 's2', FAST);
    const b = await broker({ credentials: file });
    assert.equal(await connackCode(b.url, 's1', s2.secret), 4);
    assert.equal(await connackCode(b.url, 'nobody', s1.secret), 4);
    const c = await b.sensor({ username: 's1', password: s1.secret });
    await c.publishAsync('sensors/s1/temp', '21.5', { qos: 1 });
    await c.publishAsync('sensors/s2/temp', '99', { qos: 1 }); // another sensor's device: dropped
    await waitFor('s1 frame', () => b.frames.length === 1);
    assert.equal(b.frames[0]!.fields?.device, 's1');
    assert.deepEqual(b.bad, ['topic_mismatch']);
    // s2 cannot take s1's session over by reusing its client id [MQTT-3.1.4-2].
    const held = await b.sensor({ username: 's1', password: s1.secret, clientId: 'shared-id' });
    await assert.rejects(
      mqtt.connectAsync(b.url, {
        reconnectPeriod: 0,
        username: 's2',
        password: s2.secret,
        clientId: 'shared-id',
      }),
      (e: { code?: unknown }) => e.code === 5,
    );
    await held.publishAsync('sensors/s1/temp', '22', { qos: 1 });
    await waitFor('s1 still connected and delivering', () => b.frames.length === 2);
  });

  it("refuses every subscription (`#`, `$SYS/#`, a sensor's own topic) and forwards nothing", async () => {
    const b = await broker({ allowAnonymous: true });
    const spy = await b.sensor();
    // mqtt.js rejects a SUBACK with failure codes; the packet carries what the broker granted.
    const granted = await spy.subscribeAsync(['#', '$SYS/#', 'sensors/s1/temp']).then(
      () => [],
      (e: { packet?: { granted?: number[] } }) => e.packet?.granted ?? [],
    );
    assert.deepEqual(granted, [128, 128, 128]);
    const got: string[] = [];
    spy.on('message', (t) => got.push(t));
    const pub = await b.sensor();
    await pub.publishAsync('sensors/s1/temp', '1', { qos: 1 });
    await pub.publishAsync('sensors/s1/temp', '2', { qos: 1, retain: true });
    await waitFor('frames', () => b.frames.length === 2);
    // A round trip on the spy's connection: anything forwarded to it would have arrived before this.
    await spy.subscribeAsync('x').catch(() => {});
    assert.deepEqual(got, []);
    assert.equal(refused(b.src).subscribe, 4);
    assert.equal(spy.connected, true, 'a refused subscription keeps the connection');
  });

  it('does not retain: a retained publish becomes a frame and is not stored', async () => {
    const b = await broker({ allowAnonymous: true });
    const pub = await b.sensor();
    await pub.publishAsync('sensors/s1/temp', '7', { qos: 1, retain: true });
    await waitFor('frame', () => b.frames.length === 1);
    // The broker's store, read through aedes' persistence API: no retained message on any topic.
    const persistence = (
      b.src as unknown as {
        broker: { persistence: { createRetainedStream(p: string): AsyncIterable<unknown> } };
      }
    ).broker.persistence;
    const retained: unknown[] = [];
    for await (const p of persistence.createRetainedStream('#')) retained.push(p);
    assert.deepEqual(retained, []);
  });

  it('a declared 200 MB PUBLISH is refused on its header: the connection closes before the body is read', async () => {
    const b = await broker({ allowAnonymous: true });
    const s = await rawSocket(b.src.address()!);
    s.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'big',
        clean: true,
        keepalive: 30,
      }),
    );
    // PUBLISH QoS 0, remaining length 200 MiB (varint), then the first 64 KiB of the body.
    const len = 200 * 1024 * 1024;
    s.write(publishHeader(len));
    s.write(Buffer.alloc(64 * 1024, 0x41));
    await closed(s);
    assert.equal(refused(b.src).packet_too_large, 1);
    assert.equal(b.frames.length, 0);
  });

  it('before login a packet may be 16 KB at most; after login maxPacketSize applies', async () => {
    const pw = join(dir, 'pw-size');
    writeFileSync(pw, 's3cret\n');
    const b = await broker({ username: 'sensor', passwordFile: pw, maxPacketSize: 1024 * 1024 });
    const s = await rawSocket(b.src.address()!);
    // A CONNECT carrying a 20 KB will: refused on its header, never buffered or authenticated.
    s.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'w',
        clean: true,
        keepalive: 30,
        username: 'sensor',
        password: Buffer.from('s3cret'),
        will: { topic: 'sensors/w/m', payload: Buffer.alloc(20 * 1024), qos: 0, retain: false },
      }),
    );
    await closed(s);
    assert.equal(refused(b.src).packet_too_large, 1);
    const c = await b.sensor({ username: 'sensor', password: 's3cret' });
    await c.publishAsync('sensors/s1/blob', Buffer.alloc(100 * 1024, 0x31), { qos: 1 });
    await waitFor('the 100 KB frame', () => b.frames.length === 1);
    assert.equal(b.frames[0]!.payload.length, 100 * 1024);
  });

  it('caps connections: over maxConnections a socket is closed at once; a sensor gets in when one frees up', async () => {
    const b = await broker({ allowAnonymous: true, maxConnections: 5 });
    const held = await Promise.all(Array.from({ length: 5 }, () => rawSocket(b.src.address()!)));
    await waitFor('5 connections', () => b.src.status().connections === 5);
    const extra = await Promise.all(Array.from({ length: 20 }, () => rawSocket(b.src.address()!)));
    await Promise.all(extra.map(closed));
    assert.equal(refused(b.src).max_connections, 20);
    assert.equal(b.src.status().connections, 5);
    held[0]!.destroy();
    await waitFor('4 connections', () => b.src.status().connections === 4);
    const c = await b.sensor();
    await c.publishAsync('sensors/s1/temp', '3', { qos: 1 });
    await waitFor('frame', () => b.frames.length === 1);
  });

  it('200 parallel wrong CONNECTs: at most one password check runs, the rest are queued (4) or refused', async () => {
    const file = join(dir, 'sensors-flood.json');
    const s1 = await addAgent(file, 's1', FAST);
    const b = await broker({
      credentials: file,
      maxConnections: 300,
      authLimits: { failuresPerAgent: 1000, failuresPerAddress: 1000 },
    });
    const limits = (b.src as unknown as { authLimits: { load: { running: number; waiting: number } } })
      .authLimits;
    let maxRunning = 0;
    let maxWaiting = 0;
    const probe = setInterval(() => {
      maxRunning = Math.max(maxRunning, limits.load.running);
      maxWaiting = Math.max(maxWaiting, limits.load.waiting);
    }, 1);
    const codes = await Promise.all(Array.from({ length: 200 }, () => connackCode(b.url, 's1', 'wrong')));
    clearInterval(probe);
    assert.ok(maxRunning <= 1, `running ${maxRunning}`);
    assert.ok(maxWaiting <= 4, `waiting ${maxWaiting}`);
    assert.ok(
      codes.every((c) => c === 3 || c === 4 || c === 5),
      String(new Set(codes)),
    );
    assert.ok(codes.filter((c) => c === 3).length > 0, 'some were refused as busy without a check');
    // The real sensor still gets in.
    assert.equal(await connackCode(b.url, 's1', s1.secret), 0);
  });
});
