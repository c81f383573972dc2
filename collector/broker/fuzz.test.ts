// Bounded MQTT fuzzing of the collector's broker (issue 12, "Proof"): random and mutated packets made with
// mqtt-packet, sent before login (anyone on the network) and after login (a compromised agent). A fixed
// seed per run, printed, so a failure can be replayed with EDGEFLOW_FUZZ_SEED. Asserts what must hold
// whatever arrives: the collector stays up and answers /healthz, its memory stays bounded, nothing turns
// into a spool error, and a legitimate agent still gets its batch through to the sink.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import mqttPacket from 'mqtt-packet';
import { waitFor } from '../../test/helpers/wait.ts';
import { batch, status, summary } from '../test-support/fixtures.ts';
import { type Harness, startHarness } from '../test-support/harness.ts';
import { type RawConnection, rawConnect } from '../test-support/raw-mqtt.ts';

const SEED = Number(process.env.EDGEFLOW_FUZZ_SEED ?? Date.now() % 2 ** 31);
const CONNECTIONS = 240; // per phase; 1-6 packets each: ~1,700 packets per phase
const PARALLEL = 40;

/** mulberry32: small, seedable, good enough to pick fuzz cases. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { next, int, pick, bytes };
}
type Rng = ReturnType<typeof rng>;

function randomTopic(r: Rng, agent: string): string {
  return r.pick([
    `edgeflow/v1/${agent}/summaries`,
    `edgeflow/v1/${agent}/alerts`,
    `edgeflow/v1/${agent}/status`,
    `edgeflow/v1/${agent}/late`,
    `edgeflow/v1/${agent}/down`,
    'edgeflow/v1/gw-2/summaries',
    '#',
    '$SYS/#',
    `edgeflow/v1/${'x'.repeat(r.int(300))}/alerts`,
    r.bytes(r.int(20)).toString('latin1'),
  ]);
}

function randomPayload(r: Rng, agent: string): Buffer {
  const items = Array.from({ length: r.int(5) }, (_, i) =>
    r.next() < 0.5 ? summary(agent, `f${i}`, r.int(1e6) * 60_000) : { junk: r.int(10) },
  );
  const json = r.pick([
    () => batch(agent, items),
    () => Buffer.from(JSON.stringify(status(agent, 1_700_000_000_000 + r.int(1e6)))),
    () => Buffer.from(`${'['.repeat(r.int(5000))}`),
    () => Buffer.from(`{"v":1,"agent":"${agent}","batch":"f","items":[${'{},'.repeat(r.int(20_000))}{}]}`),
    () => r.bytes(r.int(2000)),
  ])();
  return r.next() < 0.3 ? gzipSync(json) : json;
}

function randomPacket(r: Rng, agent: string, secret: string): Parameters<typeof mqttPacket.generate>[0] {
  const id = 1 + r.int(65535);
  return r.pick<() => Parameters<typeof mqttPacket.generate>[0]>([
    () => ({
      cmd: 'connect',
      protocolId: r.pick(['MQTT', 'MQIsdp'] as const),
      protocolVersion: r.pick([3, 4, 5, 7] as const) as 4,
      clean: r.next() < 0.5,
      clientId: r.pick(['', 'fuzz', 'gw-2', r.bytes(r.int(40)).toString('latin1')]),
      keepalive: r.int(65536),
      ...(r.next() < 0.7 ? { username: r.pick([agent, 'gw-2', '__proto__', secret, '']) } : {}),
      ...(r.next() < 0.7 ? { password: Buffer.from(r.pick([secret, 'wrong', ''])) } : {}),
      ...(r.next() < 0.3
        ? {
            will: {
              topic: randomTopic(r, agent),
              payload: r.bytes(r.int(500)),
              qos: 1,
              retain: r.next() < 0.5,
            },
          }
        : {}),
    }),
    () => ({
      cmd: 'publish',
      topic: randomTopic(r, agent),
      payload: randomPayload(r, agent),
      qos: r.pick([0, 1, 2] as const),
      messageId: id,
      dup: r.next() < 0.2,
      retain: r.next() < 0.3,
    }),
    () => ({
      cmd: 'subscribe',
      messageId: id,
      subscriptions: [{ topic: randomTopic(r, agent), qos: r.pick([0, 1, 2] as const) }],
    }),
    () => ({ cmd: 'unsubscribe', messageId: id, unsubscriptions: [randomTopic(r, agent)] }),
    () => ({ cmd: r.pick(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), messageId: id }),
    () => ({ cmd: r.pick(['pingreq', 'pingresp', 'disconnect'] as const) }),
    () => ({ cmd: 'connack', returnCode: r.int(6), sessionPresent: false }),
  ])();
}

/** A generated packet, or one mutated: bytes flipped, cut short, a forged length, garbage appended. */
function randomBytes(r: Rng, agent: string, secret: string): Buffer {
  let b: Buffer;
  try {
    b = mqttPacket.generate(randomPacket(r, agent, secret));
  } catch {
    b = r.bytes(1 + r.int(64)); // mqtt-packet refused to encode this combination: send noise instead
  }
  switch (r.int(6)) {
    case 0: {
      const m = Buffer.from(b);
      for (let i = 0; i < 1 + r.int(4); i++) m[r.int(m.length)] = r.int(256);
      return m;
    }
    case 1:
      return b.subarray(0, r.int(b.length));
    case 2:
      return Buffer.concat([Buffer.from([b[0] ?? 0x30, 0xff, 0xff, 0xff, 0x7f]), b.subarray(2)]);
    case 3:
      return Buffer.concat([b, r.bytes(r.int(100))]);
    default:
      return b;
  }
}

async function session(h: Harness, r: Rng, login: boolean): Promise<void> {
  let c: RawConnection;
  try {
    c = await rawConnect(h.port);
  } catch {
    return; // refused at the connection cap: fine
  }
  try {
    if (login) {
      c.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: `fuzz-${r.int(1e9)}`,
        keepalive: 1, // the broker closes a silent session after 1.5 s [MQTT-3.1.2-24]: bounds each session
        username: 'gw-1',
        password: Buffer.from(h.secrets['gw-1']!),
      });
      const ack = await c.next();
      assert.equal(ack?.cmd === 'connack' ? ack.returnCode : null, 0, 'the fuzzing agent logs in');
    }
    for (let i = 0, n = 1 + r.int(6); i < n && !c.socket.destroyed; i++) {
      c.socket.write(randomBytes(r, 'gw-1', h.secrets['gw-1']!));
    }
    // The broker answers, closes, or (an incomplete packet) waits: a PINGREQ tells which. A wait is
    // bounded by mqtt.connectTimeout (2 s in the harness) before login and by the keepalive after.
    c.send({ cmd: 'pingreq' });
    await Promise.race([c.closed, c.next()]);
  } finally {
    c.destroy();
  }
}

describe(`MQTT fuzz (seed ${SEED})`, () => {
  let h: Harness;
  let rss0: number;
  before(async () => {
    h = await startHarness({ agents: ['gw-1', 'gw-2'] });
    // Both agents log in once first: their secrets are then cached, so the password-check limits that
    // the fuzzer's wrong CONNECTs trip (per agent id and per address) do not lock them out.
    for (const a of ['gw-1', 'gw-2']) await (await h.connect(a)).endAsync();
    rss0 = process.memoryUsage().rss;
  });
  after(async () => {
    await h.stop();
  });

  for (const phase of ['before login', 'after login'] as const) {
    test(`${CONNECTIONS} connections of random and mutated packets ${phase}: the collector stays up and bounded`, async () => {
      const r = rng(SEED + (phase === 'after login' ? 1 : 0));
      for (let i = 0; i < CONNECTIONS; i += PARALLEL) {
        await Promise.all(Array.from({ length: PARALLEL }, () => session(h, r, phase === 'after login')));
      }
      const health = await fetch(`${h.http}/healthz`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      assert.equal(await h.metric('edgeflow_collector_rejected_total', { reason: 'spool_error' }), 0);
      await waitFor('fuzz connections closed', () => h.collector.status().connections === 0);
      const grew = (process.memoryUsage().rss - rss0) / 2 ** 20;
      console.log(`# fuzz ${phase}: seed ${SEED}, RSS +${grew.toFixed(0)} MB`);
      assert.ok(grew < 200, `RSS grew ${grew.toFixed(0)} MB`);
    });
  }

  test('afterwards a legitimate agent delivers a batch to the sink', async () => {
    const c = await h.connect('gw-2');
    const item = summary('gw-2', 'after-fuzz', 0);
    await c.publishAsync('edgeflow/v1/gw-2/summaries', batch('gw-2', [item]), { qos: 1 });
    await waitFor('delivered', () => h.sinks[0]!.written.some((w) => w.itemId === item.id));
    await c.endAsync();
  });
});
