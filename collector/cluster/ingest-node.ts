// An ingest node (`collector.mode: cluster`, issue 17): the single-node broker (authentication, ACLs,
// limits) and validation, with the ingest topic in place of the spool. `buildIngestNode(config, deps)`
// has no side effects; `start()` connects and listens. The credentials file is shared by every node and
// re-read when it changes (CredentialStore checks its mtime).
import { Registry } from 'prom-client';
import { CredentialStore } from '../../shared/credentials.ts';
import { startHttpServer } from '../../shared/http.ts';
import type { Logger } from '../../shared/log.ts';
import { brokerOptionsFrom, EdgeBroker } from '../broker/broker.ts';
import type { CollectorConfig } from '../config.ts';
import { collectorRoutes } from '../http.ts';
import { createCollectorMetrics } from '../metrics.ts';
import { IngestLog } from './ingest-log.ts';
import { KafkajsIngestProducer } from './kafkajs-log.ts';
import type { IngestProducer } from './log.ts';
import { createIngestNodeMetrics } from './metrics.ts';

export interface IngestNodeDeps {
  log: Logger;
  registry?: Registry;
  version?: string;
  /** Replaces the kafkajs producer (another client, or a test double). */
  producer?: IngestProducer;
  /** See IngestLog's afterProduce (fault tests only). */
  afterProduce?: () => Promise<void>;
}

export function buildIngestNode(
  config: CollectorConfig,
  deps: IngestNodeDeps,
  extraStatus: () => object = () => ({}),
) {
  const log = deps.log;
  const kafka = config.kafka;
  if (!kafka) throw new Error('collector.mode: cluster needs kafka (config.ts checks it)');
  const registry = deps.registry ?? new Registry();
  const metrics = createCollectorMetrics(registry);
  const nodeMetrics = createIngestNodeMetrics(registry);
  const producer =
    deps.producer ?? new KafkajsIngestProducer(kafka, config.cluster, log.child({ component: 'kafka' }));
  const startedAt = Date.now();
  let broker: EdgeBroker | null = null;
  let ingest: IngestLog | null = null;
  let http: Awaited<ReturnType<typeof startHttpServer>> | null = null;

  const status = () => ({
    collector: config.collector.id,
    mode: 'cluster',
    role: 'ingest',
    version: deps.version ?? '0.0.0',
    startedAt,
    connectedClients: broker?.connectedClients ?? 0,
    connections: broker?.connections ?? 0,
    ingestTopic: config.cluster.ingestTopic,
    held: ingest?.held ?? 0,
    ...extraStatus(),
  });

  return {
    metrics,
    status,
    async start(): Promise<{ mqtt: { url: string; port: number }[]; http: string }> {
      await producer.start();
      const credentials = new CredentialStore(config.mqtt.credentials);
      credentials.load();
      if (credentials.agentCount === 0) {
        log.warn(
          { credentials: config.mqtt.credentials },
          'no agent credentials yet: every connection will be refused (run add-agent)',
        );
      }
      const il = new IngestLog(producer, config.collector.id, metrics, nodeMetrics, log, {
        // The same bounds as single-node ingest (collector.ts): hostile input is bounded here too (issue 12).
        ingest: { maxInflatedBytes: config.mqtt.maxBatchBytes, maxItems: config.mqtt.maxBatchItems },
        maxPendingBytes: config.cluster.maxPendingBytes,
        afterProduce: deps.afterProduce,
      });
      ingest = il;
      broker = new EdgeBroker(brokerOptionsFrom(config.mqtt), {
        credentials,
        metrics,
        log: log.child({ component: 'broker' }),
        onPublish: (agent, kind, topic, payload) => il.accept(agent, kind, topic, payload),
      });
      const mqtt = await broker.start();
      http = await startHttpServer(
        config.http.listen,
        collectorRoutes({ registry, refresh: () => {}, healthy: () => broker !== null, status }),
        log,
      );
      log.info(
        { mqtt: mqtt.map((m) => m.url), http: http.url, ingestTopic: config.cluster.ingestTopic },
        'ingest node started',
      );
      return { mqtt, http: http.url };
    },
    async stop(): Promise<void> {
      await http?.close();
      http = null;
      ingest?.release();
      await broker?.close();
      broker = null;
      await producer.close();
    },
  };
}
