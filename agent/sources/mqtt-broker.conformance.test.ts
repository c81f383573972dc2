// The Source conformance suite for the embedded broker (aedes): a real mqtt.js sensor publishes QoS 1
// over TCP with its credential. The sensor's PUBACKs are what "acknowledged" means here: they must wait
// for RawFrame.ack(). The outage is the sensor's connection cut; its client reconnects by itself and
// resends what was not acknowledged (DUP), which this source may deliver again (at-least-once).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from '../../test/helpers/mosquitto.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MqttBrokerSource } from './mqtt-broker.ts';
import { sourceConformance, testContext } from './source.conformance.ts';

let n = 0;

sourceConformance('mqtt-broker (embedded aedes)', {
  deviceInFields: true,
  redelivery: 'at-least-once',
  outage: 'client-gone',
  async make() {
    const dir = mkdtempSync(join(tmpdir(), 'edgeflow-broker-conf-'));
    const passwordFile = join(dir, 'sensor.pw');
    writeFileSync(passwordFile, 'sensor-secret-1');
    const port = await freePort();
    const name = `conf-broker-${++n}`;
    const build = () =>
      new MqttBrokerSource(
        {
          name,
          listen: `127.0.0.1:${port}`,
          topicPattern: 'sensors/{device}/{metric}',
          username: 'sensor',
          passwordFile,
          reconnectMinMs: 50,
          reconnectMaxMs: 200,
        },
        testContext(),
      );
    let sensor: Promise<MqttClient> | null = null;
    let pending = 0;
    /**
     * The sensor connects once the broker listens (the suite sends only after start()); one promise,
     * so concurrent sends do not connect twice with one clientId.
     */
    const client = () => {
      sensor ??= mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        clientId: `conf-sensor-${n}`,
        username: 'sensor',
        password: 'sensor-secret-1',
        clean: false,
        reconnectPeriod: 100,
        protocolVersion: 4,
      });
      return sensor;
    };
    const publish = (c: MqttClient, topic: string, payload: string) => {
      pending++;
      c.publish(topic, payload, { qos: 1 }, () => {
        pending--;
      });
    };
    return {
      source: build(),
      async send(device, payloads) {
        const c = await client();
        for (const p of payloads) publish(c, `sensors/${device}/temp`, p);
      },
      async sendBad() {
        publish(await client(), 'elsewhere/x', '{}');
        return 'topic_mismatch';
      },
      async cut() {
        (await client()).stream.destroy();
      },
      async restore() {
        const c = await client();
        await waitFor('sensor reconnected', () => c.connected, { timeoutMs: 30_000 });
      },
      unacknowledged: () => pending,
      again: build,
      async close() {
        await (await sensor)?.endAsync(true);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
