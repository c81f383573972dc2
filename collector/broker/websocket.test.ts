// MQTT over WebSocket (`ws://` listener, an extension of SPEC 2b): the same authentication, ACLs and
// PUBACK-after-spool as TCP, through a real WebSocket connection from mqtt.js.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { waitFor } from '../../test/helpers/wait.ts';
import { batch, summary } from '../test-support/fixtures.ts';
import { type Harness, startHarness } from '../test-support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness({ mqttExtra: 'listen: [tcp://127.0.0.1:0, ws://127.0.0.1:0]' });
});
after(async () => {
  await h.stop();
});

const wsUrl = () => `ws://127.0.0.1:${h.ports[1]}`;

test('an agent publishes a batch over ws://: PUBACK, item spooled and delivered to the sink', async () => {
  const c = await mqtt.connectAsync(wsUrl(), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    username: 'gw-1',
    password: h.secrets['gw-1'],
  });
  try {
    await c.publishAsync(
      'edgeflow/v1/gw-1/summaries',
      batch('gw-1', [summary('gw-1', 'ws-dev', 1_700_000_040_000)]),
      {
        qos: 1,
      },
    );
    await waitFor('item at the sink', () => h.sinks[0]!.written.some((i) => i.device === 'ws-dev'));
    assert.ok((await h.metric('edgeflow_collector_connections_total', { listener: 'ws' })) >= 1);
  } finally {
    await c.endAsync();
  }
});

test('over ws:// too: no credentials refused, cross-agent publish closes the connection', async () => {
  await assert.rejects(
    mqtt.connectAsync(wsUrl(), { protocolVersion: 4, reconnectPeriod: 0 }),
    /Not authorized/i,
  );
  const c = await mqtt.connectAsync(wsUrl(), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    username: 'gw-1',
    password: h.secrets['gw-1'],
  });
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  c.publish('edgeflow/v1/gw-2/summaries', batch('gw-2', [summary('gw-2', 'd', 1_700_000_040_000)]), {
    qos: 1,
  });
  await closed;
  c.end(true);
});

test('over ws:// a message larger than a pre-auth packet is refused before login and accepted after (issue 12, item 10)', async () => {
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(wsUrl(), 'mqtt');
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(Buffer.alloc(32 * 1024, 0x41)); // no CONNECT yet: 32 KB > preAuthMaxPacketSize (16 KB)
  assert.equal(await closed, 1009, 'ws closes with "message too big"');
  // Logged in, the same size is an ordinary batch.
  const c = await mqtt.connectAsync(wsUrl(), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    username: 'gw-1',
    password: h.secrets['gw-1'],
  });
  try {
    const items = Array.from({ length: 80 }, (_, i) => summary('gw-1', 'ws-big', i * 60_000));
    const payload = batch('gw-1', items);
    assert.ok(payload.length > 20 * 1024, `${payload.length} bytes`);
    await c.publishAsync('edgeflow/v1/gw-1/summaries', payload, { qos: 1 });
  } finally {
    await c.endAsync();
  }
});
