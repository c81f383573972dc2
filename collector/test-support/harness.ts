// An in-process collector for unit/component tests: MQTT on 127.0.0.1:0, HTTP on port 0, a temp data
// dir, credentials with cheap scrypt parameters, and a scriptable in-memory sink.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Registry } from 'prom-client';
import { parseConfigText } from '../../shared/config-file.ts';
import { addAgent } from '../../shared/credentials.ts';
import { type Logger, nullLogger } from '../../shared/log.ts';
import { buildCollector, type Collector } from '../collector.ts';
import { collectorConfigSchema } from '../config.ts';
import type { Sink, WriteResult } from '../sinks/sink.ts';
import type { SpoolItem } from '../spool/spool.ts';

export const FAST_SCRYPT = { N: 1024, r: 8, p: 1, keylen: 32 };

/** A sink that records what it gets; `mode` decides the outcome of each write. */
export class MemorySink implements Sink {
  written: SpoolItem[] = [];
  mode: 'ok' | 'down' | ((items: readonly SpoolItem[]) => WriteResult) = 'ok';
  calls = 0;
  constructor(readonly name: string) {}
  async start(): Promise<void> {}
  async write(items: readonly SpoolItem[]): Promise<WriteResult> {
    this.calls++;
    if (this.mode === 'down') {
      return {
        ok: 0,
        failed: items.map((_, index) => ({ index, error: 'down', code: 'unavailable', retriable: true })),
      };
    }
    const res = this.mode === 'ok' ? { ok: items.length, failed: [] } : this.mode(items);
    const bad = new Set(res.failed.map((f) => f.index));
    const firstRetriable = res.failed.find((f) => f.retriable)?.index ?? items.length;
    items.forEach((it, i) => {
      if (!bad.has(i) && i < firstRetriable) this.written.push(it);
    });
    return res;
  }
  async healthcheck(): Promise<boolean> {
    return this.mode !== 'down';
  }
  async close(): Promise<void> {}
}

export interface Harness {
  collector: Collector;
  url: string;
  port: number;
  /** Bound port of every listener, in config order. */
  ports: number[];
  http: string;
  secrets: Record<string, string>;
  sinks: MemorySink[];
  dataDir: string;
  connect(agent: string | null, opts?: IClientOptions): Promise<MqttClient>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startHarness(
  opts: {
    agents?: string[];
    yaml?: string;
    /** Extra or overriding keys of the `mqtt:` mapping, as YAML flow entries. */
    mqttExtra?: string;
    /** Extra keys of the `http:` mapping (e.g. `tls: {...}`), as YAML flow entries. */
    httpExtra?: string;
    sinks?: MemorySink[];
    runner?: Record<string, number>;
    /** Where the collector logs (default: nowhere). */
    log?: Logger;
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-collector-'));
  const credentials = join(dir, 'agents.json');
  const secrets: Record<string, string> = {};
  for (const a of opts.agents ?? ['gw-1', 'gw-2'])
    secrets[a] = (await addAgent(credentials, a, FAST_SCRYPT)).secret;
  const text = `collector: { id: test, dataDir: ${join(dir, 'data')} }
mqtt: { credentials: ${credentials}, ${opts.mqttExtra?.includes('connectTimeout') ? '' : 'connectTimeout: 2s, '}${opts.mqttExtra ?? 'listen: [tcp://127.0.0.1:0]'}${opts.mqttExtra?.includes('maxPacketSize') ? '' : ', maxPacketSize: 64KB'} }
http: { listen: 127.0.0.1:0${opts.httpExtra ? `, ${opts.httpExtra}` : ''} }
${opts.yaml ?? ''}`;
  const cfg = parseConfigText(text, collectorConfigSchema);
  if (!cfg.ok) throw new Error(cfg.problems.join('\n'));
  const sinks = opts.sinks ?? [new MemorySink('kafka')];
  const registry = new Registry();
  const collector = buildCollector(cfg.config, {
    log: opts.log ?? nullLogger(),
    registry,
    sinks,
    runner: { minBackoffMs: 20, maxBackoffMs: 200, idlePollMs: 50, ...opts.runner },
  });
  const r = await collector.start();
  const m = r.mqtt[0]!;
  const clients: MqttClient[] = [];
  return {
    collector,
    url: `mqtt://127.0.0.1:${m.port}`,
    port: m.port,
    ports: r.mqtt.map((x) => x.port),
    http: r.http,
    secrets,
    sinks,
    dataDir: join(dir, 'data'),
    async connect(agent, extra = {}) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${m.port}`, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...(agent ? { username: agent, password: secrets[agent] ?? 'x' } : {}),
        ...extra,
      });
      clients.push(c);
      return c;
    },
    async metric(name, labels = {}) {
      const m = (await registry.getSingleMetric(name)?.get())?.values ?? [];
      return m
        .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
        .reduce((s, v) => s + v.value, 0);
    },
    async stop() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await collector.stop();
    },
  };
}
