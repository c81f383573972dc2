// Entry points of cluster mode for main.ts: `run` with `collector.mode: cluster` (an ingest node) and
// `forward [--to kafka|influx]`. Same conventions as `run`: one JSON ready line on stdout, logs on
// stderr, SIGTERM/SIGINT stop cleanly, a start failure exits 1 (2 for a configuration problem).
import { existsSync } from 'node:fs';
import { Registry } from 'prom-client';
import { startHttpServer } from '../../shared/http.ts';
import type { Logger } from '../../shared/log.ts';
import type { CollectorConfig } from '../config.ts';
import { collectorRoutes } from '../http.ts';
import { serve } from '../serve.ts';
import { InfluxSink } from '../sinks/influxdb.ts';
import { KafkaForwarder } from './forwarder.ts';
import { InfluxForwarder } from './influx-forwarder.ts';
import { buildIngestNode } from './ingest-node.ts';
import { KafkajsForwarderLog } from './kafkajs-log.ts';
import { createForwarderMetrics } from './metrics.ts';

const EXIT_CONFIG = 2;

export async function runIngestNode(config: CollectorConfig, log: Logger, version: string): Promise<void> {
  const hold = { holding: 0 };
  const afterProduce = holdWhileFileExists('EDGEFLOW_TEST_HOLD_PUBACK_FILE', log, hold);
  const node = buildIngestNode(config, { log, version, ...(afterProduce ? { afterProduce } : {}) }, () => ({
    holdingPubacks: hold.holding,
  }));
  await serve('ingest node', node, log);
}

/**
 * Fault-injection hooks for the cluster fault test (test/cluster/cluster.test.ts); unset in production.
 * While the file named by the environment variable exists, the process holds at the hook: a forwarder
 * between sending a transaction's records and committing it (EDGEFLOW_TEST_HOLD_COMMIT_FILE), an ingest
 * node between Kafka's acknowledgement and the PUBACK (EDGEFLOW_TEST_HOLD_PUBACK_FILE). `state.holding`
 * counts the callers held, for /status, so the test can SIGKILL the process at exactly that point.
 */
function holdWhileFileExists(
  envName: string,
  log: Logger,
  state: { holding: number },
): (() => Promise<void>) | undefined {
  const file = process.env[envName];
  if (!file) return undefined;
  return async () => {
    if (!existsSync(file)) return;
    state.holding++;
    log.warn({ file }, `holding (${envName})`);
    while (existsSync(file)) await new Promise((r) => setTimeout(r, 50));
    state.holding--;
  };
}

export async function runForwarder(
  config: CollectorConfig,
  opts: { to: 'kafka' | 'influx'; http?: string },
  log: Logger,
  version: string,
): Promise<void> {
  const kafka = config.kafka;
  if (!kafka) {
    process.stderr.write('kafka: forward needs kafka (the ingest topic)\n');
    process.exit(EXIT_CONFIG);
  }
  if (opts.to === 'influx' && !config.influx) {
    process.stderr.write('influx: forward --to influx needs an influx block\n');
    process.exit(EXIT_CONFIG);
  }
  const registry = new Registry();
  const metrics = createForwarderMetrics(registry, opts.to);
  const hold = { holding: 0 };
  const group = opts.to === 'kafka' ? config.cluster.forwarderGroup : config.cluster.influxGroup;
  const io = new KafkajsForwarderLog(kafka, config.cluster, group, log.child({ component: 'kafka' }));
  const fwd =
    opts.to === 'kafka'
      ? new KafkaForwarder(kafka, config.cluster, io, metrics, log, {
          beforeCommit: holdWhileFileExists('EDGEFLOW_TEST_HOLD_COMMIT_FILE', log, hold),
        })
      : new InfluxForwarder(
          config.cluster,
          io.consumer(group),
          new InfluxSink(config.influx!, log.child({ sink: 'influx' })),
          metrics,
          log,
        );
  let http: Awaited<ReturnType<typeof startHttpServer>> | null = null;
  const status = () => ({
    collector: config.collector.id,
    role: `forward-${opts.to}`,
    version,
    ...hold,
    ...fwd.status(),
  });
  await serve(
    `forwarder (${opts.to})`,
    {
      async start() {
        http = await startHttpServer(
          opts.http ?? config.http.listen,
          collectorRoutes({ registry, refresh: () => {}, healthy: () => true, status }),
          log,
        );
        await fwd.start();
        log.info({ to: opts.to, group, http: http.url }, 'forwarder started');
        return { http: http.url, to: opts.to };
      },
      async stop() {
        await fwd.stop();
        await http?.close();
      },
    },
    log,
  );
}
