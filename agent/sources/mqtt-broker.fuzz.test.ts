// Bounded MQTT fuzz against the embedded sensor broker (issue 12, Proof): valid packets from mqtt-packet
// of every type, then mutated (bytes flipped, truncated, remaining length rewritten, random garbage),
// sent over many short connections. The broker must stay up, keep memory bounded, and a legitimate
// sensor must still deliver afterwards. Seeded (FUZZ_SEED to replay a failure), fixed count.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { Registry } from 'prom-client';
import { mulberry32 } from '../../firmware-sim/prng.ts';
import { systemClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MqttBrokerSource } from './mqtt-broker.ts';
import type { RawFrame } from './source.ts';

const CONNECTIONS = 150;
const PACKETS_PER_CONNECTION = 20; // 3,000 packets in all
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-broker-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('MQTT fuzz: 3,000 random and mutated packets; the broker stays up, memory bounded, a sensor still delivers', {
  timeout: 180_000,
}, async () => {
  const rnd = mulberry32(SEED); // seeded, so a failing run can be replayed
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const pw = join(dir, 'pw');
  writeFileSync(pw, 'fuzz-secret\n');
  const frames: RawFrame[] = [];
  const src = new MqttBrokerSource(
    {
      name: 'fuzz',
      listen: '127.0.0.1:0',
      topicPattern: 'sensors/{device}/{metric}',
      username: 'sensor',
      passwordFile: pw,
      maxConnections: 32,
    },
    { log: nullLogger(), clock: systemClock, metrics: new Registry() },
  );
  await src.start((f) => {
    frames.push(f);
    f.ack?.();
  });
  const [host, port] = src.address()!.split(':') as [string, string];
  const topics = ['sensors/s1/temp', '#', '$SYS/x', 'sensors/+/x', '', 'a/'.repeat(200), 'sensors/\u0000/m'];
  const valid = (): Buffer => {
    const topic = pick(topics);
    const packets: mqttPacket.Packet[] = [
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: pick([3, 4, 5] as const),
        clientId: pick(['', 'c', 'x'.repeat(100)]),
        clean: rnd() < 0.5,
        keepalive: int(65536),
        ...(rnd() < 0.5 ? { username: 'sensor', password: Buffer.from('fuzz-secret') } : {}),
        ...(rnd() < 0.3 ? { will: { topic, payload: Buffer.alloc(int(2000)), qos: 1, retain: true } } : {}),
      },
      {
        cmd: 'publish',
        topic,
        payload: Buffer.alloc(int(4096), 0x31),
        qos: pick([0, 1, 2] as const),
        retain: rnd() < 0.5,
        dup: rnd() < 0.2,
        messageId: 1 + int(65535),
      },
      {
        cmd: 'subscribe',
        messageId: 1 + int(65535),
        subscriptions: [{ topic: topic || '#', qos: pick([0, 1, 2] as const) }],
      },
      { cmd: 'unsubscribe', messageId: 1 + int(65535), unsubscriptions: [topic || '#'] },
      { cmd: 'puback', messageId: int(65536) },
      { cmd: 'pubrec', messageId: int(65536) },
      { cmd: 'pubrel', messageId: int(65536) },
      { cmd: 'pubcomp', messageId: int(65536) },
      { cmd: 'pingreq' },
      { cmd: 'disconnect' },
    ];
    try {
      return mqttPacket.generate(pick(packets));
    } catch {
      return Buffer.from([0xc0, 0x00]); // a field mqtt-packet refuses to encode: send a PINGREQ instead
    }
  };
  const mutate = (b: Buffer): Buffer => {
    const m = Buffer.from(b);
    switch (int(5)) {
      case 0: // flip a few bytes
        for (let i = 0; i < 1 + int(4); i++) m[int(m.length)] = int(256);
        return m;
      case 1: // truncated
        return m.subarray(0, int(m.length));
      case 2: // a huge declared remaining length, then a little of the body
        return Buffer.concat([Buffer.from([m[0]!, 0xff, 0xff, 0xff, 0x7f]), m.subarray(2, 2 + int(1024))]);
      case 3: // garbage
        return Buffer.from(Array.from({ length: 1 + int(256) }, () => int(256)));
      default:
        return m;
    }
  };
  const send = (packets: Buffer[]) =>
    new Promise<void>((resolve) => {
      const s: Socket = netConnect(Number(port), host);
      s.on('error', () => {});
      s.on('data', () => {});
      s.once('close', () => resolve());
      s.once('connect', () => {
        for (const p of packets) s.write(p);
        s.end();
      });
      // A connection the broker leaves open (valid packets, no DISCONNECT) is closed by us.
      setTimeout(() => s.destroy(), 2000).unref();
    });

  const rssBefore = process.memoryUsage().rss;
  let sent = 0;
  for (let c = 0; c < CONNECTIONS; c += 10) {
    await Promise.all(
      Array.from({ length: 10 }, () => {
        const packets = Array.from({ length: PACKETS_PER_CONNECTION }, () =>
          rnd() < 0.6 ? mutate(valid()) : valid(),
        );
        sent += packets.length;
        return send(packets);
      }),
    );
  }
  assert.equal(sent, CONNECTIONS * PACKETS_PER_CONNECTION);
  assert.equal(src.status().state, 'up');
  await waitFor('fuzz connections closed', () => src.status().connections === 0, { timeoutMs: 30_000 });
  const grownMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  // What was sent is ~3,000 packets of at most a few KB; an unbounded buffer of even the declared sizes
  // (up to 256 MB each) would be far beyond this.
  assert.ok(grownMb < 100, `RSS grew ${grownMb.toFixed(0)} MB during the fuzz`);

  const before = frames.length;
  const sensor = await mqtt.connectAsync(`mqtt://${host}:${port}`, {
    reconnectPeriod: 0,
    username: 'sensor',
    password: 'fuzz-secret',
  });
  await sensor.publishAsync('sensors/legit/temp', '21.5', { qos: 1 });
  await waitFor('the legit reading', () =>
    frames.slice(before).some((f) => f.payload.toString() === '21.5' && f.fields?.device === 'legit'),
  );
  await sensor.endAsync(true);
  await src.stop();
});
