// Component tests against the real Mosquitto on 127.0.0.1:1883 (unique topic prefixes and client ids;
// persistent sessions are wiped in after()). Connection loss is simulated with a local TCP proxy.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { systemClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MqttSource, type MqttSourceOptions } from './mqtt.ts';
import type { RawFrame } from './source.ts';

const BROKER = 'mqtt://127.0.0.1:1883';
const run = randomUUID().slice(0, 8);
const clientIds = new Set<string>();
const sources: MqttSource[] = [];
let n = 0;

function prefix(): string {
  return `edgeflow-test/${run}/${++n}`;
}

function source(opts: Partial<MqttSourceOptions> & { topics: string[] }, url = BROKER) {
  const frames: RawFrame[] = [];
  const bad: string[] = [];
  const src = new MqttSource(
    { name: `floor-${n}`, agentId: `t-${run}`, url, reconnectMinMs: 50, reconnectMaxMs: 200, ...opts },
    { log: nullLogger(), clock: systemClock, metrics: new Registry() },
  );
  clientIds.add(src.clientId);
  sources.push(src);
  const start = () => src.start((f) => frames.push(f), { onBadFrame: (r) => bad.push(r) });
  return { src, frames, bad, start, texts: () => frames.map((f) => f.payload.toString()) };
}

async function publish(topic: string, payloads: string[]): Promise<void> {
  const c = await mqtt.connectAsync(BROKER, { clientId: `edgeflow-test-pub-${randomUUID()}` });
  for (const p of payloads) await c.publishAsync(topic, p, { qos: 1 });
  await c.endAsync();
}

afterEach(async () => {
  for (const s of sources.splice(0)) await s.stop();
});

after(async () => {
  // Remove the persistent sessions this file created from the shared broker.
  for (const clientId of clientIds) {
    const c = await mqtt.connectAsync(BROKER, {
      clientId,
      clean: true,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 0 },
    });
    await c.endAsync();
  }
});

describe('mqtt source against Mosquitto', { timeout: 120_000 }, () => {
  it('delivers QoS 1 messages with topicPattern fields and an ack; other topics are topic_mismatch', async () => {
    const p = prefix();
    const t = source({ topics: [`${p}/#`], topicPattern: `${p}/{device}/{metric}` });
    await t.start();
    await waitFor('connected', () => t.src.status().state === 'up');
    assert.match(t.src.clientId, /^edgeflow-t-[0-9a-f]{8}-floor-\d+$/);
    await waitFor(
      'subscribed',
      () =>
        t.src.status().lastError === undefined && (t.src as unknown as { subscribed: boolean }).subscribed,
    );
    await publish(`${p}/s1/temperature`, ['21.5']);
    await publish(`${p}/s1`, ['x']);
    await waitFor('frame', () => t.frames.length === 1 && t.bad.length === 1);
    const f = t.frames[0]!;
    assert.equal(f.payload.toString(), '21.5');
    assert.deepEqual(f.fields, { device: 's1', metric: 'temperature' });
    assert.equal(typeof f.ack, 'function');
    assert.deepEqual(t.bad, ['topic_mismatch']);
    // topic_mismatch is acked at once, but its PUBACK queues behind the frame's [MQTT-4.6.0-2].
    assert.equal(t.src.status().pendingAcks, 2);
    f.ack!();
    assert.equal(t.src.status().pendingAcks, 0);
    // The fields are remembered per topic (issue 14): the same topic again gives equal fields, another
    // device its own, and a mismatching topic is refused again (the memo keeps the refusal too).
    await publish(`${p}/s1/temperature`, ['22']);
    await publish(`${p}/s2/humidity`, ['40']);
    await publish(`${p}/s1`, ['y']);
    await waitFor('3 more', () => t.frames.length === 3 && t.bad.length === 2);
    assert.deepEqual(
      t.frames.map((x) => [x.payload.toString(), x.fields]),
      [
        ['21.5', { device: 's1', metric: 'temperature' }],
        ['22', { device: 's1', metric: 'temperature' }],
        ['40', { device: 's2', metric: 'humidity' }],
      ],
    );
    assert.ok(Object.isFrozen(t.frames[1]!.fields), 'shared between the frames of a topic: read-only');
    assert.deepEqual(t.src.status().badFrames, { topic_mismatch: 2 });
    for (const x of t.frames.slice(1)) x.ack!();
  });

  it('QoS 0: frames without ack or key, over MQTT 3.1.1 (nothing to acknowledge), topicPattern fields', async () => {
    const p = prefix();
    const t = source({ topics: [`${p}/+/+`], topicPattern: `${p}/{device}/{metric}`, qos: 0 });
    await t.start();
    await waitFor('subscribed', () => (t.src as unknown as { subscribed: boolean }).subscribed);
    const client = (t.src as unknown as { client: { options: { protocolVersion: number } } }).client;
    assert.equal(client.options.protocolVersion, 4);
    const c = await mqtt.connectAsync(BROKER, { clientId: `edgeflow-test-pub-${randomUUID()}` });
    for (let i = 0; i < 5; i++) await c.publishAsync(`${p}/d${i % 2}/t`, String(i), { qos: 0 });
    await c.endAsync();
    await waitFor('5 frames', () => t.frames.length === 5);
    assert.deepEqual(t.texts(), ['0', '1', '2', '3', '4']);
    assert.deepEqual(
      t.frames.map((f) => [f.fields?.device, f.ack, f.key]),
      [0, 1, 0, 1, 0].map((d) => [`d${d}`, undefined, undefined]),
    );
    assert.equal(t.src.status().pendingAcks, 0);
    // Arrival times are read once per socket chunk (issue 14): a later chunk has its own.
    const last = t.frames[4]!;
    assert.ok(Math.abs(last.receivedAt - Date.now()) < 5000, 'receivedAt is the wall clock');
    assert.equal(typeof last.receivedMono, 'number');
    await new Promise((r) => setTimeout(r, 100));
    await publish(`${p}/d9/t`, ['5']);
    await waitFor('6th frame', () => t.frames.length === 6);
    const next = t.frames[5]!;
    assert.ok(next.receivedMono! - last.receivedMono! >= 90, 'a new chunk, a new arrival time');
    assert.ok(next.receivedAt - last.receivedAt >= 90);
  });

  it('receives far more un-acked messages than max_inflight_messages (MQTT 5 receiveMaximum)', async () => {
    const p = prefix();
    const t = source({ topics: [`${p}/#`] });
    await t.start();
    await waitFor('subscribed', () => (t.src as unknown as { subscribed: boolean }).subscribed);
    await publish(
      `${p}/x`,
      Array.from({ length: 150 }, (_, i) => String(i)),
    );
    await waitFor('150 frames without acks', () => t.frames.length === 150);
    assert.deepEqual(
      t.texts(),
      Array.from({ length: 150 }, (_, i) => String(i)),
    );
  });

  it('withholds PUBACK until ack(): un-acked messages are redelivered to the next client with the same id', async () => {
    const p = prefix();
    const opts = { topics: [`${p}/#`], clientId: `edgeflow-test-${run}-redeliver` };
    const a = source(opts);
    await a.start();
    await waitFor('subscribed', () => (a.src as unknown as { subscribed: boolean }).subscribed);
    await publish(`${p}/x`, ['1', '2', '3']);
    await waitFor('3 frames', () => a.frames.length === 3);
    a.frames[0]!.ack!();
    a.frames[2]!.ack!(); // acked, but must wait behind 2 [MQTT-4.6.0-2] and is lost with it
    assert.equal(a.src.status().pendingAcks, 2);
    await a.src.stop();

    const b = source(opts);
    await b.start();
    await waitFor('redelivery', () => b.frames.length === 2);
    assert.deepEqual(b.texts(), ['2', '3']);
    for (const f of b.frames) f.ack!();
    await b.src.stop();

    // Everything acked now: a third incarnation gets only new messages.
    const c = source(opts);
    await c.start();
    await waitFor('up', () => c.src.status().state === 'up');
    await publish(`${p}/x`, ['4']);
    await waitFor('new message', () => c.frames.length >= 1);
    assert.deepEqual(c.texts(), ['4']);
  });

  it('an agent that stops before its checkpoint (no ack at all) leaves every message to the next client', async () => {
    const p = prefix();
    const opts = { topics: [`${p}/#`], clientId: `edgeflow-test-${run}-crash` };
    const a = source(opts);
    await a.start();
    await waitFor('subscribed', () => (a.src as unknown as { subscribed: boolean }).subscribed);
    await publish(`${p}/x`, ['1', '2']);
    await waitFor('2 frames', () => a.frames.length === 2);
    await a.src.stop(); // without any ack: as if the agent crashed before its checkpoint
    const b = source(opts);
    await b.start();
    await waitFor('redelivery', () => b.frames.length === 2);
    assert.deepEqual(b.texts(), ['1', '2']);
  });

  it('reconnects after the connection is lost, without re-delivering frames it already has', async () => {
    const p = prefix();
    const proxy = await TcpProxy.start(1883);
    try {
      const t = source(
        { topics: [`${p}/#`], clientId: `edgeflow-test-${run}-proxy` },
        `mqtt://127.0.0.1:${proxy.port}`,
      );
      await t.start();
      await waitFor('subscribed', () => (t.src as unknown as { subscribed: boolean }).subscribed);
      await publish(`${p}/x`, ['1', '2']);
      await waitFor('2 frames', () => t.frames.length === 2);

      await proxy.close(); // connection lost and broker unreachable
      await waitFor('down', () => t.src.status().state === 'down');
      await waitFor('refused while down', () => /ECONNREFUSED/.test(String(t.src.status().lastError)));
      await proxy.listen();
      await waitFor('up again', () => t.src.status().state === 'up');
      assert.equal(t.src.status().reconnects, 1);
      await waitFor('redelivery matched', () => t.src.status().redeliveredMatched === 2);
      assert.equal(t.frames.length, 2, 'the DUP redeliveries are not new frames');

      for (const f of t.frames) f.ack!(); // runtime checkpointed: PUBACKs go out on the new connection
      await waitFor('acks sent', () => t.src.status().pendingAcks === 0);
      await publish(`${p}/x`, ['3']);
      await waitFor('3rd', () => t.frames.length === 3);
      t.frames[2]!.ack!();
      await t.src.stop();

      const again = source({ topics: [`${p}/#`], clientId: `edgeflow-test-${run}-proxy` });
      await again.start();
      await waitFor('up', () => again.src.status().state === 'up');
      await publish(`${p}/x`, ['4']);
      await waitFor('4th', () => again.frames.length >= 1);
      assert.deepEqual(again.texts(), ['4'], 'nothing acked was redelivered');
    } finally {
      await proxy.close();
    }
  });

  it('pause() stops taking frames, resume() continues', async () => {
    const p = prefix();
    const t = source({ topics: [`${p}/#`], qos: 1 });
    await t.start();
    await waitFor('subscribed', () => (t.src as unknown as { subscribed: boolean }).subscribed);
    t.src.pause();
    await publish(`${p}/x`, ['a', 'b']);
    await new Promise((r) => setTimeout(r, 200)); // bounded observation window
    assert.equal(t.frames.length, 0);
    t.src.resume();
    await waitFor('both', () => t.frames.length === 2);
    assert.deepEqual(t.texts(), ['a', 'b']);
  });

  it('drops payloads over maxPayloadBytes as too_long and acks them', async () => {
    const p = prefix();
    const t = source({ topics: [`${p}/#`], maxPayloadBytes: 4 });
    await t.start();
    await waitFor('subscribed', () => (t.src as unknown as { subscribed: boolean }).subscribed);
    await publish(`${p}/x`, ['12345', '1234']);
    await waitFor('frame', () => t.frames.length === 1);
    assert.deepEqual(t.bad, ['too_long']);
    assert.deepEqual(t.texts(), ['1234']);
  });

  it('falls back to MQTT 3.1.1 for a broker without MQTT 5 (aedes v1), and reports refused credentials', async () => {
    // A bare aedes v1 broker speaks only 3.1.1 and here requires a username (the shared Mosquitto allows
    // anonymous). Not the agent's embedded broker: that one grants no subscriptions (issue 12).
    const aedes = await Aedes.createBroker({
      authenticate: (_client, username, _password, done) => done(null, username === 'agent'),
    });
    const server = net.createServer(aedes.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      const bad = source({ topics: ['x/#'], username: 'intruder' }, `mqtt://${address}`);
      await bad.start();
      await waitFor('refused', () =>
        /Bad username|Not authori[sz]ed/i.test(String(bad.src.status().lastError)),
      );
      assert.equal(bad.src.status().state, 'down');

      const ok = source({ topics: ['x/#'], username: 'agent' }, `mqtt://${address}`);
      await ok.start();
      await waitFor('up over 3.1.1', () => ok.src.status().state === 'up');
      await waitFor('subscribed', () => (ok.src as unknown as { subscribed: boolean }).subscribed);
      const pub = await mqtt.connectAsync(`mqtt://${address}`, { username: 'agent' });
      await pub.publishAsync('x/s1/m', '5', { qos: 1 });
      await waitFor('forwarded to the subscriber', () => ok.frames.length === 1);
      assert.equal(ok.texts()[0], '5');
      await pub.endAsync();
    } finally {
      server.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
  });

  it('starts while the broker is unreachable and reports it', async () => {
    const t = source({ topics: ['x/#'] }, 'mqtt://127.0.0.1:1');
    await t.start();
    await waitFor('down', () => t.src.status().state === 'down');
    assert.match(String(t.src.status().lastError), /ECONNREFUSED/);
  });
});

/** A TCP proxy to the broker that can drop every connection and stop listening (broker "gone"). */
class TcpProxy {
  private server: net.Server | null = null;
  private sockets = new Set<net.Socket>();
  port = 0;
  private constructor(private readonly target: number) {}

  static async start(target: number): Promise<TcpProxy> {
    const p = new TcpProxy(target);
    await p.listen();
    return p;
  }

  async listen(): Promise<void> {
    const server = net.createServer((c) => {
      const up = net.connect(this.target, '127.0.0.1');
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      c.pipe(up).pipe(c);
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise((r) => s.close(r));
  }
}
