import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { PacketSizeGuard } from './mqtt-packet-guard.ts';

const publish = (n: number) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: 't',
    payload: Buffer.alloc(n),
    qos: 0,
    dup: false,
    retain: false,
  });

test('passes packets under the limit, however the stream is cut', () => {
  const stream = Buffer.concat([
    publish(10),
    publish(200),
    publish(20_000),
    mqttPacket.generate({ cmd: 'pingreq' }),
  ]);
  for (const chunk of [1, 2, 3, 7, 128, stream.length]) {
    const g = new PacketSizeGuard(30_000);
    for (let i = 0; i < stream.length; i += chunk)
      assert.deepEqual(g.feed(stream.subarray(i, i + chunk)), { ok: true }, `chunk ${chunk}`);
  }
});

test('refuses a packet over the limit from its header, before the body arrives', () => {
  const big = publish(5000);
  const g = new PacketSizeGuard(4096);
  assert.deepEqual(g.feed(publish(100)), { ok: true });
  const v = g.feed(big.subarray(0, 4)); // fixed header + 2-byte remaining length only
  assert.equal(v.ok, false);
  if (!v.ok) assert.equal(v.reason, 'too_large');
  assert.equal(g.feed(Buffer.from([0])).ok, false, 'stays failed');
});

test('a remaining length longer than 4 bytes is malformed [MQTT-2.2.3]', () => {
  const g = new PacketSizeGuard(1 << 30);
  const v = g.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
  assert.equal(v.ok, false);
  if (!v.ok) assert.equal(v.reason, 'malformed');
});
