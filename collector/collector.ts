// Wires the collector together: broker → ingest → spool → sink runners, plus the HTTP endpoints.
// `buildCollector(config, deps)` has no side effects (no files, sockets or timers); `start()` opens the
// spool, starts the sinks and listens; `stop()` undoes it. Two collectors coexist in one process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { type Clock, systemClock } from '../shared/clock.ts';
import { startHttpServer } from '../shared/http.ts';
import type { Logger } from '../shared/log.ts';
import { EdgeBroker } from './broker/broker.ts';
import type { CollectorConfig } from './config.ts';
import { CredentialStore } from './credentials.ts';
import { collectorRoutes } from './http.ts';
import { IngestPipeline } from './ingest/pipeline.ts';
import { type CollectorMetrics, createCollectorMetrics } from './metrics.ts';
import { InfluxSink } from './sinks/influxdb.ts';
import { KafkaSink } from './sinks/kafka.ts';
import { DEFAULT_RUNNER_OPTIONS, type RunnerOptions, SinkRunner } from './sinks/runner.ts';
import type { Sink } from './sinks/sink.ts';
import { Spool } from './spool/spool.ts';

export interface CollectorDeps {
  log: Logger;
  registry?: Registry;
  clock?: Clock;
  /** Replace the sinks built from the config (tests). */
  sinks?: Sink[];
  runner?: Partial<RunnerOptions>;
  version?: string;
}

export interface RunningCollector {
  mqtt: { url: string; port: number }[];
  http: string;
}

export function buildCollector(config: CollectorConfig, deps: CollectorDeps) {
  const log = deps.log;
  const clock = deps.clock ?? systemClock;
  const registry = deps.registry ?? new Registry();
  const metrics: CollectorMetrics = createCollectorMetrics(registry);
  const sinks: Sink[] = deps.sinks ?? [];
  if (!deps.sinks) {
    if (config.kafka) sinks.push(new KafkaSink(config.kafka, log.child({ sink: 'kafka' })));
    if (config.influx) sinks.push(new InfluxSink(config.influx, log.child({ sink: 'influx' })));
  }
  const startedAt = clock.now();

  let spool: Spool | null = null;
  let pipeline: IngestPipeline | null = null;
  let broker: EdgeBroker | null = null;
  let runners: SinkRunner[] = [];
  let http: Awaited<ReturnType<typeof startHttpServer>> | null = null;
  let pruneTimer: ReturnType<Clock['setInterval']> | null = null;

  function status() {
    return {
      collector: config.collector.id,
      version: deps.version ?? '0.0.0',
      startedAt,
      connectedClients: broker?.connectedClients ?? 0,
      connections: broker?.connections ?? 0,
      spool: spool
        ? {
            bytes: spool.sizeBytes,
            maxBytes: config.spool.maxBytes,
            full: spool.isFull(),
            held: pipeline?.held ?? 0,
          }
        : null,
      sinks: runners.map((r) => {
        const d = spool?.depth(r.sink.name);
        return {
          name: r.sink.name,
          depth: d?.items ?? 0,
          oldestAgeMs: d?.oldestReceivedAt ? Math.max(0, clock.now() - d.oldestReceivedAt) : 0,
          lastError: r.lastError,
          lastSuccessAt: r.lastSuccessAt,
        };
      }),
    };
  }

  return {
    config,
    metrics,
    registry,
    sinks,
    get spool(): Spool | null {
      return spool;
    },
    get runners(): readonly SinkRunner[] {
      return runners;
    },
    status,

    async start(): Promise<RunningCollector> {
      mkdirSync(config.collector.dataDir, { recursive: true });
      spool = new Spool(join(config.collector.dataDir, 'spool.db'), {
        maxBytes: config.spool.maxBytes,
        sinks: sinks.map((s) => s.name),
        dedupRetentionMs: config.spool.dedupRetention,
        dedupMaxRows: config.spool.dedupMaxRows,
        now: () => clock.now(),
      });
      const credentials = new CredentialStore(config.mqtt.credentials);
      credentials.load();
      if (credentials.agentCount === 0) {
        log.warn(
          { credentials: config.mqtt.credentials },
          'no agent credentials yet: every connection will be refused (run add-agent)',
        );
      }
      const p = new IngestPipeline(spool, metrics, log, {
        maxInflatedBytes: Math.max(16 * config.mqtt.maxPacketSize, 64 * 1024 * 1024),
      });
      pipeline = p;
      for (const s of sinks) await s.start();
      runners = sinks.map(
        (s) =>
          new SinkRunner(s, spool!, metrics, log.child({ sink: s.name }), clock, {
            ...DEFAULT_RUNNER_OPTIONS,
            ...deps.runner,
          }),
      );
      for (const r of runners) r.start();
      const sp = spool;
      pruneTimer = clock.setInterval(() => {
        try {
          const n = sp.pruneDedup();
          if (n > 0) log.debug({ removed: n }, 'pruned dedup index');
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'dedup prune failed');
        }
      }, 10 * 60_000);
      (pruneTimer as { unref?: () => void }).unref?.();
      sp.pruneDedup();

      broker = new EdgeBroker(
        {
          listen: config.mqtt.listen,
          tls: config.mqtt.tls,
          maxPacketSize: config.mqtt.maxPacketSize,
          connectTimeoutMs: config.mqtt.connectTimeout,
        },
        {
          credentials,
          metrics,
          log: log.child({ component: 'broker' }),
          onPublish: (agent, kind, topic, payload) => p.accept(agent, kind, topic, payload),
        },
      );
      const mqtt = await broker.start();
      http = await startHttpServer(
        config.http.listen,
        collectorRoutes({
          registry,
          refresh: () => {
            for (const r of runners) r.updateDepth();
            metrics.spoolBytes.set(spool?.sizeBytes ?? 0);
          },
          healthy: () => spool !== null && broker !== null,
          status,
        }),
        log,
      );
      log.info(
        { mqtt: mqtt.map((m) => m.url), http: http.url, sinks: sinks.map((s) => s.name) },
        'collector started',
      );
      return { mqtt, http: http.url };
    },

    async stop(): Promise<void> {
      if (pruneTimer) clock.clearInterval(pruneTimer);
      pruneTimer = null;
      await http?.close();
      http = null;
      pipeline?.release();
      await broker?.close();
      broker = null;
      await Promise.all(runners.map((r) => r.stop()));
      runners = [];
      await Promise.all(sinks.map((s) => s.close()));
      spool?.close();
      spool = null;
    },
  };
}

export type Collector = ReturnType<typeof buildCollector>;
