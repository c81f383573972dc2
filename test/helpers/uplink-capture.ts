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
 */
export async function captureUplink(
  url: string,
  agentId: string,
  opts: { clean?: boolean } = {},
): Promise<{ captured: Captured; client: MqttClient; close(): Promise<void>; totalCount(): number }> {
  const captured: Captured = {
    summaries: new Map(),
    alerts: new Map(),
    late: new Map(),
    status: [],
    summaryLog: [],
    alertLog: [],
    arrivals: [],
    batches: 0,
  };
  const client = await mqtt.connectAsync(url, {
    clientId: `capture-${agentId}-${process.pid}`,
    clean: opts.clean ?? true,
    reconnectPeriod: 200,
  });
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
  await client.subscribeAsync(`edgeflow/v1/${agentId}/+`, { qos: 1 });
  return {
    captured,
    client,
    close: () => client.endAsync(),
    totalCount: () => [...captured.summaries.values()].reduce((a, s) => a + s.count, 0),
  };
}
