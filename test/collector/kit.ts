// Shared bits of the collector integration tests: an in-process collector against the real services,
// a kcat reader, and a TCP proxy that can be "unplugged" to simulate a sink outage.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net, { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ISocketFactory } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { Registry } from 'prom-client';
import { buildCollector, type Collector } from '../../collector/collector.ts';
import { collectorConfigSchema } from '../../collector/config.ts';
import { InfluxSink } from '../../collector/sinks/influxdb.ts';
import { KafkaSink } from '../../collector/sinks/kafka.ts';
import { parseConfigText } from '../../shared/config-file.ts';
import { addAgent } from '../../shared/credentials.ts';
import { nullLogger } from '../../shared/log.ts';

export const FAST_SCRYPT = { N: 1024, r: 8, p: 1, keylen: 32 };

export interface Running {
  collector: Collector;
  port: number;
  http: string;
  registry: Registry;
  secret: string;
  connect(): Promise<MqttClient>;
  stop(): Promise<void>;
}

/**
 * Decides per connection whether Kafka is reachable: while `down`, the client gets a socket to a closed
 * port (connection refused) and the sockets it had are destroyed. The shared Kafka keeps running.
 * kafkajs takes `factory` as its socket factory. @platformatic/kafka has no such option: `hookNet()`
 * routes its `net.createConnection` calls to the broker port through the same switch (the library's
 * named import of node:net follows the swap through node:module syncBuiltinESMExports).
 */
export class KafkaSwitch {
  down = false;
  private socks = new Set<Socket>();
  hookNet(brokerPort: number): () => void {
    const original = net.createConnection;
    const hooked = ((...args: unknown[]) => {
      const [opts] = args;
      const isBroker = (o: unknown): o is net.TcpNetConnectOpts =>
        typeof o === 'object' && o !== null && 'port' in o && Number(o.port) === brokerPort;
      if (!isBroker(opts)) return Reflect.apply(original, net, args) as Socket;
      const s = original(this.down ? { ...opts, host: '127.0.0.1', port: 1 } : opts);
      this.socks.add(s);
      s.on('close', () => this.socks.delete(s));
      return s;
    }) as typeof net.createConnection;
    net.createConnection = hooked;
    syncBuiltinESMExports();
    return () => {
      if (net.createConnection === hooked) net.createConnection = original;
      syncBuiltinESMExports();
    };
  }
  readonly factory = ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }) => {
    const s = this.down
      ? netConnect({ host: '127.0.0.1', port: 1 }, onConnect)
      : netConnect({ host, port }, onConnect);
    this.socks.add(s);
    s.on('close', () => this.socks.delete(s));
    return s;
  };
  cut(): void {
    this.down = true;
    for (const s of this.socks) s.destroy(new Error('unplugged by test'));
  }
  restore(): void {
    this.down = false;
  }
}

/** A collector in this process with `sinksYaml` (kafka:/influx: sections) for one agent. */
export async function runCollector(
  agent: string,
  sinksYaml: string,
  opts: { kafkaSwitch?: KafkaSwitch } = {},
): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-it-'));
  const credentials = join(dir, 'agents.json');
  const { secret } = await addAgent(credentials, agent, FAST_SCRYPT);
  const cfg = parseConfigText(
    `collector: { id: it, dataDir: ${join(dir, 'data')} }
mqtt: { listen: [tcp://127.0.0.1:0], credentials: ${credentials} }
http: { listen: 127.0.0.1:0 }
${sinksYaml}`,
    collectorConfigSchema,
  );
  if (!cfg.ok) throw new Error(cfg.problems.join('\n'));
  const registry = new Registry();
  const log = nullLogger();
  const sw = opts.kafkaSwitch;
  let unhookNet = () => {};
  if (sw && cfg.config.kafka && cfg.config.kafka.client !== 'kafkajs') {
    const port = Number(cfg.config.kafka.brokers[0]!.split(':').pop());
    unhookNet = sw.hookNet(port);
  }
  const sinks =
    sw && cfg.config.kafka
      ? [
          new KafkaSink(cfg.config.kafka, log, { socketFactory: sw.factory as ISocketFactory }),
          ...(cfg.config.influx ? [new InfluxSink(cfg.config.influx, log)] : []),
        ]
      : undefined;
  const collector = buildCollector(cfg.config, {
    log,
    registry,
    ...(sinks ? { sinks } : {}),
    runner: { minBackoffMs: 50, maxBackoffMs: 500, idlePollMs: 100 },
  });
  const r = await collector.start();
  const port = r.mqtt[0]!.port;
  const clients: MqttClient[] = [];
  return {
    collector,
    port,
    http: r.http,
    registry,
    secret,
    async connect() {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username: agent,
        password: secret,
        reconnectPeriod: 0,
        protocolVersion: 4,
      });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await collector.stop();
      unhookNet();
    },
  };
}

export interface KcatRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers?: string[];
}

/** Reads a whole topic with kcat (an independent client): `-C -o beginning -e -J`. */
export async function kcatRead(brokers: string[], topic: string): Promise<KcatRecord[]> {
  const p = spawn('kcat', ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-e', '-J', '-q'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => {
    out += d;
  });
  p.stderr.on('data', (d) => {
    err += d;
  });
  const [code] = (await once(p, 'close')) as [number];
  if (code !== 0) throw new Error(`kcat exited ${code}: ${err}`);
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as KcatRecord);
}

/** kcat -J headers are a flat [k1, v1, k2, v2, ...] array. */
export function header(r: KcatRecord, name: string): string | undefined {
  const h = r.headers ?? [];
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}
