// Stands in for the collector in agent tests: subscribes on a real MQTT broker to one agent's uplink
// topics and keeps the latest revision of every item, so tests can account for every reading.

import { gunzipSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';

export interface Captured {
  summaries: Map<string, any>;
  alerts: Map<string, any>;
  late: Map<string, any>;
  status: any[];
  /** Every summary item as received, duplicates included (order of arrival). */
  summaryLog: any[];
  alertLog: any[];
  /** Every item of every kind in order of arrival (summaries, alerts and late events interleaved). */
  arrivals: { kind: string; item: any; at: number }[];
  batches: number;
}

/**
 * `clean: false` keeps the subscription in a persistent session, so a broker that is restarted with
 * persistence (mosquitto.ts `gateway: true`) queues what arrives before this client has reconnected.
 * `captured`: go on recording into what an earlier (closed) capture of the same agent recorded; with
 * `clean: false` this client resumes that capture's session (same client id) and gets what was queued.
 */
export async function captureUplink(
  url: string,
  agentId: string,
  opts: { clean?: boolean; captured?: Captured } = {},
): Promise<{ captured: Captured; client: MqttClient; close(): Promise<void>; totalCount(): number }> {
  const captured: Captured = opts.captured ?? {
    summaries: new Map(),
    alerts: new Map(),
    late: new Map(),
    status: [],
    summaryLog: [],
    alertLog: [],
    arrivals: [],
    batches: 0,
  };
  const client = mqtt.connect(url, {
    clientId: `capture-${agentId}-${process.pid}`,
    clean: opts.clean ?? true,
    reconnectPeriod: 200,
  });
  // Listening before the CONNACK: a resumed session's queued messages come right behind it.
  client.on('message', (topic, payload) => {
    const kind = topic.split('/')[3];
    if (kind === 'down') return; // the collector's downlink (fleet documents, issue 15), not the agent's
    const text =
      payload[0] === 0x1f && payload[1] === 0x8b
        ? gunzipSync(payload).toString('utf8')
        : payload.toString('utf8');
    const msg = JSON.parse(text);
    if (kind === 'status') {
      captured.status.push(msg);
      return;
    }
    captured.batches++;
    for (const item of msg.items) {
      const map =
        kind === 'summaries' ? captured.summaries : kind === 'alerts' ? captured.alerts : captured.late;
      if (kind === 'summaries') captured.summaryLog.push(item);
      if (kind === 'alerts') captured.alertLog.push(item);
      captured.arrivals.push({ kind: kind!, item, at: Date.now() });
      const prev = map.get(item.id);
      if (!prev || (item.rev ?? 0) >= (prev.rev ?? 0)) map.set(item.id, item);
    }
  });
  await new Promise<void>((resolve, reject) => {
    // As connectAsync: the first error before the first CONNACK fails the capture.
    const onError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('error', onError);
    client.once('connect', () => {
      client.off('error', onError);
      resolve();
    });
  });
  await client.subscribeAsync(`edgeflow/v1/${agentId}/+`, { qos: 1 });
  return {
    captured,
    client,
    close: () => client.endAsync(),
    totalCount: () => [...captured.summaries.values()].reduce((a, s) => a + s.count, 0),
  };
}
