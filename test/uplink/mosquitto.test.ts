// The uplink against a real Mosquitto (SPEC.md section 3): MQTT 5 with the gzip content type, MQTT 3.1.1
// plain, and the retained status a late subscriber still gets. Needs Mosquitto on EDGEFLOW_MQTT_URL
// [mqtt://127.0.0.1:1883] (scripts/services.sh starts one).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import { MemoryOutbox } from '../../agent/outbox/memory.ts';
import { item } from '../../agent/outbox/outbox.conformance.ts';
import { MqttUplink } from '../../agent/uplink/mqtt-uplink.ts';
import { batchEnvelopeSchema, statusSchema } from '../../shared/model.ts';
import { waitFor } from '../helpers/wait.ts';

const URL = process.env.EDGEFLOW_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const cleanups: (() => Promise<unknown> | undefined)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Got {
  topic: string;
  payload: Buffer;
  contentType: string | undefined;
  retain: boolean;
}

async function subscriber(filter: string): Promise<Got[]> {
  const got: Got[] = [];
  const c = await mqtt.connectAsync(URL, { protocolVersion: 5, clean: true, reconnectPeriod: 0 });
  cleanups.push(() => c.endAsync(true));
  c.on('message', (topic, payload, packet) =>
    got.push({ topic, payload, contentType: packet.properties?.contentType, retain: packet.retain }),
  );
  await c.subscribeAsync(filter, { qos: 1 });
  return got;
}

function statusOf(agent: string) {
  return () => ({
    agent,
    version: 'test',
    startedAt: 1,
    ts: Date.now(),
    clockSynced: true,
    outbox: { items: 0, bytes: 0, oldestTs: null },
    sources: {},
    counters: { x: 1 },
  });
}

describe('MqttUplink → Mosquitto', () => {
  for (const protocolVersion of [5, 4] as const) {
    it(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: gzip batches arrive complete and decode`, async () => {
      const agent = `gw-mosq-${protocolVersion}-${process.pid}`;
      const got = await subscriber(`edgeflow/v1/${agent}/+`);
      const outbox = new MemoryOutbox();
      outbox.append(Array.from({ length: 1200 }, (_, i) => item('summaries', i)));
      outbox.append([item('alerts', 5000)]);
      const up = new MqttUplink(
        {
          agentId: agent,
          urls: [URL],
          protocolVersion,
          compress: 'gzip',
          compressThreshold: 0,
          batch: { maxItems: 500, maxDelay: 10 },
        },
        outbox,
        { getStatus: statusOf(agent) },
      );
      cleanups.push(() => up.stop());
      up.start();
      await waitFor('drained', () => outbox.stats().items === 0);
      await waitFor(
        'all batches at the subscriber',
        () => got.filter((g) => !g.topic.endsWith('/status')).length >= 4,
      );
      const ids = new Set<string>();
      for (const g of got.filter((x) => !x.topic.endsWith('/status'))) {
        assert.equal(g.payload[0], 0x1f);
        assert.equal(g.payload[1], 0x8b);
        if (protocolVersion === 5) assert.equal(g.contentType, 'application/json+gzip');
        const env = batchEnvelopeSchema.parse(JSON.parse(gunzipSync(g.payload).toString()));
        for (const i of env.items as { id: string }[]) ids.add(i.id);
      }
      assert.equal(ids.size, 1201);
      await up.stop();

      // the status is retained: a subscriber arriving later still gets it
      const late = await subscriber(`edgeflow/v1/${agent}/status`);
      await waitFor('retained status', () => late.length > 0);
      assert.equal(late[0]!.retain, true);
      assert.equal(statusSchema.parse(JSON.parse(late[0]!.payload.toString())).agent, agent);
      // clear the retained message so the broker does not keep test debris
      const c = await mqtt.connectAsync(URL, { reconnectPeriod: 0 });
      await c.publishAsync(`edgeflow/v1/${agent}/status`, '', { retain: true, qos: 1 });
      await c.endAsync();
    });
  }
});
