// Foundation issue "done when" (b): edgeflow-sim → Mosquitto (QoS 1) → an mqtt.js subscriber that
// subscribed before the simulator started, under a topic prefix unique to this run, receives every
// message; counts per device/metric from decoding them equal the simulator's report.
//
// json frames on per-metric topics carry their timestamp, so the subscriber can tell a duplicate (same
// topic, same bytes) from a new reading and see late frames. The number format (no timestamp) is
// checked for counts only.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { compileTopicPattern } from '../../shared/topics.ts';
import { services, uniqueName } from '../helpers/services.ts';
import { runSimProcess } from '../helpers/sim-run.ts';
import { waitFor } from '../helpers/wait.ts';
import { Receiver } from './receiver.ts';

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-sim-mqtt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function mqttRun(name: string, format: 'json' | 'number', seconds: number, extra: string[]) {
  const broker = services().mosquitto.url;
  const prefix = `edgeflow-it/${uniqueName(`sim-${name}`)}`;
  const pattern = `${prefix}/{device}/{metric}`;
  const match = compileTopicPattern(pattern);
  const rx = new Receiver(format);
  // MQTT 5 with a large Receive Maximum: Mosquitto may then keep many QoS 1 messages in flight to us
  // instead of queueing them (max_queued_messages, 1000 by default), a queue that overflows and drops
  // messages for a subscriber that falls behind on a loaded machine.
  const sub = await mqtt.connectAsync(broker, {
    clean: true,
    reconnectPeriod: 0,
    protocolVersion: 5,
    properties: { receiveMaximum: 65535 },
  });
  try {
    sub.on('message', (topic, payload) => {
      const fields = match(topic);
      assert.ok(fields?.device && fields.metric, `topic ${topic} fits ${pattern}`);
      rx.frame(payload, { device: fields.device, metric: fields.metric }, topic);
    });
    await sub.subscribeAsync(`${prefix}/#`, { qos: 1 }); // before the simulator starts
    const started = performance.now();
    const { report } = await runSimProcess(
      [
        ...['--mqtt', broker, '--qos', '1', '--topic-pattern', pattern, '--format', format],
        ...[
          '--devices',
          '10',
          '--metrics',
          'temperature,vibration,current',
          '--rate',
          '100',
          '--duration',
          `${seconds}s`,
        ],
        ...['--seed', `mqtt-${name}`, ...extra, '--log-level', 'warn'],
      ],
      join(dir, `report-${name}.json`),
    );
    await waitFor(
      `all ${report.framesSent} messages (have ${rx.frames})`,
      () => rx.frames >= report.framesSent,
      {
        timeoutMs: 10_000,
      },
    );
    return { rx, report, elapsedMs: performance.now() - started };
  } finally {
    await sub.endAsync();
  }
}

describe('edgeflow-sim to Mosquitto over MQTT QoS 1', () => {
  it('30 s, 10 devices x 3 metrics at 100 Hz, json with malformed, duplicate and late frames: counts match', async () => {
    const { rx, report, elapsedMs } = await mqttRun('json', 'json', 30, [
      ...['--malformed', '0.01', '--duplicates', '0.01', '--out-of-order', '0.02', '--max-delay', '1s'],
    ]);
    assert.equal(rx.frames, report.framesSent, 'frames');
    assert.equal(rx.malformed, report.malformed, 'malformed');
    assert.equal(rx.duplicates, report.duplicates, 'duplicates');
    assert.equal(rx.outOfOrder, report.outOfOrder, 'out of order');
    assert.equal(rx.readings, report.readingsSent, 'readings');
    assert.deepEqual(rx.sorted(), report.sent.byDeviceMetric);
    assert.equal(report.readingsSent + report.malformed, 30 * 3000);
    assert.ok(report.malformed > 0 && report.duplicates > 0 && report.outOfOrder > 0);
    assert.ok(elapsedMs < 45_000, `${elapsedMs} ms`);
  });

  it('10 s, number payloads (device and metric from the topic): counts match', async () => {
    const { rx, report } = await mqttRun('number', 'number', 10, ['--malformed', '0.01']);
    assert.equal(rx.frames, report.framesSent);
    assert.equal(rx.malformed, report.malformed);
    assert.equal(rx.readings, report.readingsSent);
    assert.deepEqual(rx.sorted(), report.sent.byDeviceMetric);
    assert.equal(report.readingsSent + report.malformed, 10 * 3000);
  });
});
