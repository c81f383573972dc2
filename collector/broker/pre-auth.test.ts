// Memory before login (issue 12, item 10): what a client that never authenticates can make the broker
// hold. The tester's attack, 300 connections each sending most of a 1 MB CONNECT, added 280 MB.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../../test/helpers/wait.ts';
import { batch, summary } from '../test-support/fixtures.ts';
import { type Harness, startHarness } from '../test-support/harness.ts';
import { type RawConnection, rawConnect } from '../test-support/raw-mqtt.ts';

/** The first bytes of a CONNECT announcing `size` bytes of remaining length ([MQTT-2.2.3]). */
function connectHeader(size: number): Buffer {
  const len: number[] = [];
  let x = size;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    len.push(b);
  } while (x > 0);
  return Buffer.from([0x10, ...len]);
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

describe('before login', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      // connectTimeout well above the time 300 connections take on a loaded machine: the header, not the
      // deadline, must be what closes each of them (at load 20, 2 s closed one by the deadline first).
      mqttExtra:
        'listen: [tcp://127.0.0.1:0], maxPacketSize: 1MB, maxPendingConnections: 400, connectTimeout: 60s',
    });
  });
  after(async () => {
    await h.stop();
  });
  const rejected = (reason: string) => h.metric('edgeflow_collector_rejected_total', { reason });

  test('300 connections × a partial 1 MB CONNECT: each closed at its header, memory stays flat; an agent still delivers', async () => {
    global.gc?.();
    const rss0 = rssMb();
    const body = Buffer.alloc(1024 * 1024 - 1024, 0x41);
    const conns: RawConnection[] = [];
    for (let wave = 0; wave < 3; wave++) {
      const batchOf = await Promise.all(Array.from({ length: 100 }, () => rawConnect(h.port)));
      for (const c of batchOf) {
        c.socket.write(connectHeader(1024 * 1024));
        c.socket.write(body); // most of the announced CONNECT; the rest never comes
      }
      conns.push(...batchOf);
    }
    await Promise.all(conns.map((c) => c.closed));
    assert.equal(await rejected('packet_too_large'), 300, 'refused from the 5-byte header');
    const grew = rssMb() - rss0;
    console.log(`# 300 partial 1 MB CONNECTs: RSS +${grew.toFixed(0)} MB (the tester saw +280 MB)`);
    // This process sent 300 MB too (the client side's buffers); the broker's share was the 280 MB.
    assert.ok(grew < 150, `RSS grew ${grew.toFixed(0)} MB`);
    const agent = await h.connect('gw-1');
    await agent.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [summary('gw-1', 'd', 0)]), {
      qos: 1,
    });
    await agent.endAsync();
  });
});

test('connection caps: past maxPendingConnections new connections are closed at once and counted; a logged-in agent is not affected', async () => {
  const h = await startHarness({
    // idle connections must outlive the test's steps at load 20+: a long connectTimeout
    mqttExtra:
      'listen: [tcp://127.0.0.1:0], maxPendingConnections: 20, maxConnections: 25, connectTimeout: 60s',
  });
  try {
    const agent = await h.connect('gw-1'); // logged in: counts towards maxConnections only
    const idle = await Promise.all(Array.from({ length: 20 }, () => rawConnect(h.port)));
    await waitFor('20 pending connections', () => h.collector.status().connections === 21);
    const extra = await Promise.all(Array.from({ length: 5 }, () => rawConnect(h.port)));
    await Promise.all(extra.map((c) => c.closed));
    assert.equal(await h.metric('edgeflow_collector_rejected_total', { reason: 'connection_limit' }), 5);
    await agent.publishAsync('edgeflow/v1/gw-1/summaries', batch('gw-1', [summary('gw-1', 'd', 0)]), {
      qos: 1,
    });
    for (const c of idle) c.destroy();
    await waitFor('pending connections released', () => h.collector.status().connections === 1);
    const again = await h.connect('gw-2');
    assert.equal(again.connected, true);
  } finally {
    await h.stop();
  }
});

test('connection caps: past maxConnections in all, new connections are closed at once', async () => {
  const agents = ['gw-1', 'gw-2', 'gw-3', 'gw-4', 'gw-5', 'gw-6'];
  const h = await startHarness({
    agents,
    mqttExtra:
      'listen: [tcp://127.0.0.1:0], maxPendingConnections: 8, maxConnections: 8, connectTimeout: 60s',
  });
  try {
    for (const a of agents) await h.connect(a);
    const two = await Promise.all([rawConnect(h.port), rawConnect(h.port)]);
    await waitFor('8 open', () => h.collector.status().connections === 8);
    const over = await rawConnect(h.port);
    await over.closed;
    assert.equal(await h.metric('edgeflow_collector_rejected_total', { reason: 'connection_limit' }), 1);
    for (const c of two) c.destroy();
  } finally {
    await h.stop();
  }
});

test('a CONNECT that never completes is closed at mqtt.connectTimeout', async () => {
  const h = await startHarness();
  try {
    const c = await rawConnect(h.port);
    c.socket.write(connectHeader(200)); // small, legal size; the body never comes
    const t0 = performance.now();
    await c.closed;
    const waited = performance.now() - t0;
    assert.ok(waited >= 1500, `closed after ${waited.toFixed(0)} ms, connectTimeout is 2 s`);
  } finally {
    await h.stop();
  }
});
