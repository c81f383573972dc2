// The Source conformance suite for the MQTT client source against the test bed's Mosquitto (persistent
// session, QoS 1). The source reaches the broker through a TCP proxy the rig unplugs for the outage
// (connections cut and refused) and plugs back on the same port; the publisher talks to the broker
// directly. Sessions this file made are removed from the shared broker at the end.
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { services } from '../../test/helpers/services.ts';
import { TcpPlug } from '../../test/helpers/tcp-plug.ts';
import { MqttSource } from './mqtt.ts';
import { sourceConformance, testContext } from './source.conformance.ts';

const run = randomUUID().slice(0, 8);
let n = 0;

async function endSession(url: string, clientId: string): Promise<void> {
  const c = await mqtt.connectAsync(url, {
    clientId,
    clean: true,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 0 },
    reconnectPeriod: 0,
  });
  await c.endAsync();
}

sourceConformance('mqtt (client of Mosquitto)', {
  deviceInFields: true,
  redelivery: 'matched',
  outage: 'down',
  async make() {
    const url = services().mosquitto.url;
    const broker = new URL(url);
    const plug = new TcpPlug({ host: broker.hostname, port: Number(broker.port) });
    await plug.up();
    const prefix = `edgeflow-conf/${run}/${++n}`;
    const clientId = `edgeflow-conf-${run}-${n}`;
    const build = () =>
      new MqttSource(
        {
          name: `conf-mqtt-${n}`,
          agentId: `conf-${run}`,
          clientId,
          url: `mqtt://127.0.0.1:${plug.port}`,
          topics: [`${prefix}/#`],
          topicPattern: `${prefix}/{device}/{metric}`,
          reconnectMinMs: 50,
          reconnectMaxMs: 200,
          redeliveryGraceMs: 5000,
        },
        testContext(),
      );
    // One publisher (the promise is shared: concurrent sends must not connect twice with one clientId).
    let pub: Promise<MqttClient> | null = null;
    const publisher = () => {
      pub ??= mqtt.connectAsync(url, { clientId: `edgeflow-conf-pub-${run}-${n}`, reconnectPeriod: 0 });
      return pub;
    };
    return {
      source: build(),
      async send(device, payloads) {
        const c = await publisher();
        for (const p of payloads) await c.publishAsync(`${prefix}/${device}/temp`, p, { qos: 1 });
      },
      async sendBad() {
        await (await publisher()).publishAsync(`${prefix}/no-metric`, '{}', { qos: 1 });
        return 'topic_mismatch';
      },
      cut: () => plug.down(),
      restore: () => plug.up(),
      again: build,
      async close() {
        await (await pub)?.endAsync();
        await plug.down();
        await endSession(url, clientId);
      },
    };
  },
});
