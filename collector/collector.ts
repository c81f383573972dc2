// Wires the collector together: broker → ingest → spool → sink runners, plus the HTTP endpoints.
// `buildCollector(config, deps)` has no side effects (no files, sockets or timers); `start()` opens the
// spool, starts the sinks and listens; `stop()` undoes it. Two collectors coexist in one process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { type Clock, systemClock } from '../shared/clock.ts';
import { CredentialStore } from '../shared/credentials.ts';
import { startHttpServer } from '../shared/http.ts';
import type { Logger } from '../shared/log.ts';
import { AgentUpdateMetrics } from './artifacts/report.ts';
import { artifactHandler } from './artifacts/serve.ts';
import { brokerOptionsFrom, EdgeBroker } from './broker/broker.ts';
import type { CollectorConfig } from './config.ts';
import { collectorRoutes } from './http.ts';
import { IngestPipeline } from './ingest/pipeline.ts';
import { type CollectorMetrics, createCollectorMetrics } from './metrics.ts';
import { buildSink, configuredSinks } from './sinks/from-config.ts';
import { DEFAULT_RUNNER_OPTIONS, type RunnerOptions, SinkRunner } from './sinks/runner.ts';
import type { Sink } from './sinks/sink.ts';
import { ThreadedSinkRunner } from './sinks/sink-thread.ts';
import { Spool } from './spool/spool.ts';

export interface CollectorDeps {
  log: Logger;
  registry?: Registry;
  clock?: Clock;
  /** Replace the sinks built from the config (tests); these always run on the main thread. */
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
  const updateMetrics = new AgentUpdateMetrics(registry); // issue 16
  // Sinks from the config run each on its own thread (collector.sinkThreads, sinks/sink-thread.ts);
  // injected sinks and sinkThreads: false run on this one.
  const threaded = !deps.sinks && config.collector.sinkThreads;
  const sinks: Sink[] = deps.sinks ?? [];
  if (!deps.sinks && !threaded) {
    for (const name of configuredSinks(config))
      sinks.push(buildSink(name, config, log.child({ sink: name })));
  }
  const sinkNames = threaded ? configuredSinks(config) : sinks.map((s) => s.name);
  const startedAt = clock.now();

  let spool: Spool | null = null;
  let pipeline: IngestPipeline | null = null;
  let broker: EdgeBroker | null = null;
  let runners: (SinkRunner | ThreadedSinkRunner)[] = [];
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
    get runners(): readonly (SinkRunner | ThreadedSinkRunner)[] {
      return runners;
    },
    status,

    async start(): Promise<RunningCollector> {
      mkdirSync(config.collector.dataDir, { recursive: true, mode: 0o700 }); // spool: owner-only (issue 12)
      const spoolPath = join(config.collector.dataDir, 'spool.db');
      spool = new Spool(spoolPath, {
        maxBytes: config.spool.maxBytes,
        sinks: sinkNames,
        // Sink threads read through their own connections: nothing on this thread reads the cache.
        recentItems: threaded ? 0 : undefined,
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
        maxInflatedBytes: config.mqtt.maxBatchBytes,
        maxItems: config.mqtt.maxBatchItems,
        onStatus: (agent, st) => updateMetrics.observe(agent, st),
      });
      pipeline = p;
      const runnerOpts = { ...DEFAULT_RUNNER_OPTIONS, ...deps.runner };
      if (threaded) {
        const sp = spool;
        const started = sinkNames.map(
          (name) =>
            new ThreadedSinkRunner(
              name as 'kafka' | 'influx',
              config,
              sp,
              spoolPath,
              metrics,
              log.child({ sink: name }),
              runnerOpts,
            ),
        );
        runners = started;
        const results = await Promise.allSettled(started.map((r) => r.start()));
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) {
          await Promise.all(started.map((r) => r.stop()));
          runners = [];
          throw failed.reason;
        }
      } else {
        for (const s of sinks) await s.start();
        const inProcess = sinks.map(
          (s) => new SinkRunner(s, spool!, metrics, log.child({ sink: s.name }), clock, runnerOpts),
        );
        runners = inProcess;
        for (const r of inProcess) r.start();
      }
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

      broker = new EdgeBroker(brokerOptionsFrom(config.mqtt), {
        credentials,
        metrics,
        log: log.child({ component: 'broker' }),
        onPublish: (agent, kind, topic, payload) => p.accept(agent, kind, topic, payload),
      });
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
        config.artifacts &&
          artifactHandler({
            dir: config.artifacts.dir,
            credentials,
            authLimits: brokerOptionsFrom(config.mqtt).authLimits,
            log,
          }),
      );
      log.info(
        { mqtt: mqtt.map((m) => m.url), http: http.url, sinks: sinkNames, sinkThreads: threaded },
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
