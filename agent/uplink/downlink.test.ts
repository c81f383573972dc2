// The uplink runner's downlink and on-demand status (issue 13, for fleet control, issue 15): a
// subscription made through the runner receives what the collector side publishes on the agent's
// `down` topic, also after the broker restarted (clean session: the runner subscribes again), and
// publishStatusNow() publishes the retained status at once. In-process aedes broker on loopback.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { Status } from '../../shared/model.ts';
import { downlinkTopic } from '../../shared/topics.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MemoryOutbox } from '../outbox/memory.ts';
import { MqttUplink } from './mqtt-uplink.ts';
import { TestBroker } from './test-broker.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function status(agent: string, n: { v: number }): () => Status {
  return () => ({
    agent,
    version: '0.0.0-test',
    startedAt: 1,
    ts: ++n.v, // each status differs: the test tells them apart
    clockSynced: true,
    outbox: { items: 0, bytes: 0, oldestTs: null },
    sources: {},
    counters: {},
  });
}

describe('uplink downlink and publishStatusNow', () => {
  it('delivers messages on the down topic, before and after a broker restart; unsubscribe stops them', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const agent = 'gw-down-1';
    const up = new MqttUplink(
      { agentId: agent, urls: [`mqtt://127.0.0.1:${broker.port}`], backoff: { minMs: 20, maxMs: 100 } },
      new MemoryOutbox(),
      { getStatus: status(agent, { v: 0 }) },
    );
    cleanups.push(() => up.stop());
    const got: string[] = [];
    const topic = downlinkTopic(agent);
    const off = up.subscribe(topic, (t, payload) => {
      assert.equal(t, topic);
      got.push(payload.toString('utf8'));
    });
    up.start();
    await waitFor('connected', () => up.state().connected);

    const sender = async () => {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
        clientId: `collector-side-${got.length}`,
      });
      cleanups.push(() => c.endAsync(true));
      return c;
    };
    let c = await sender();
    // The SUBACK may still be on its way: publish until one arrives (paced by the arrival, not a sleep).
    await waitFor('first message', async () => {
      if (got.length === 0) await c.publishAsync(topic, '{"n":1}', { qos: 1 });
      return got.length > 0;
    });
    assert.equal(got[0], '{"n":1}');

    await c.endAsync(true);
    await broker.down();
    await waitFor('link down', () => !up.state().connected);
    await broker.up();
    await waitFor('reconnected', () => up.state().connected);
    c = await sender();
    const before = got.length;
    await waitFor('message after the restart (re-subscribed)', async () => {
      if (got.length === before) await c.publishAsync(topic, '{"n":2}', { qos: 1 });
      return got.length > before;
    });
    assert.equal(got.at(-1), '{"n":2}');

    off();
    // After unsubscribe nothing more is delivered: publish a marker on a topic still subscribed by a
    // second handler, wait for it, and check the first handler saw nothing new.
    const seen2: string[] = [];
    const off2 = up.subscribe(topic, (_t, p) => seen2.push(p.toString('utf8')));
    const n = got.length;
    await waitFor('second handler gets a message', async () => {
      if (seen2.length === 0) await c.publishAsync(topic, '{"n":3}', { qos: 1 });
      return seen2.length > 0;
    });
    assert.equal(got.length, n, 'the unsubscribed handler got nothing');
    off2();
  });

  it('publishStatusNow publishes the retained status at once when connected, and says false when not', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const agent = 'gw-down-2';
    const up = new MqttUplink(
      {
        agentId: agent,
        urls: [`mqtt://127.0.0.1:${broker.port}`],
        statusInterval: 3_600_000, // only the connect status and the ones asked for
        backoff: { minMs: 20, maxMs: 100 },
      },
      new MemoryOutbox(),
      { getStatus: status(agent, { v: 0 }) },
    );
    cleanups.push(() => up.stop());
    assert.equal(up.publishStatusNow(), false, 'not started: not connected');
    up.start();
    await waitFor('connected', () => up.state().connected);
    const statuses = () => broker.received.filter((r) => r.kind === 'status');
    await waitFor('connect status', () => statuses().length === 1);
    assert.equal(up.publishStatusNow(), true);
    await waitFor('status on demand', () => statuses().length === 2);
    const last = statuses().at(-1)!;
    assert.equal(last.retain, true);
    assert.equal(last.body.agent, agent);
    assert.ok((last.body.ts as number) > (statuses()[0]!.body.ts as number), 'a fresh status, not a resend');
    await broker.down();
    await waitFor('link down', () => !up.state().connected);
    assert.equal(up.publishStatusNow(), false);
  });
});
