// Wires the collector together: broker → ingest → spool → sink runners, plus the HTTP endpoints.
// `buildCollector(config, deps)` has no side effects (no files, sockets or timers); `start()` opens the
// spool, starts the sinks and listens; `stop()` undoes it. Two collectors coexist in one process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { type Clock, systemClock } from '../shared/clock.ts';
import { readSecretFile } from '../shared/config-file.ts';
import { CredentialStore, readCredentialFile } from '../shared/credentials.ts';
import { startHttpServer } from '../shared/http.ts';
import type { Logger } from '../shared/log.ts';
import type { Alert, Status } from '../shared/model.ts';
import { AgentUpdateMetrics } from './artifacts/report.ts';
import { artifactHandler } from './artifacts/serve.ts';
import { brokerOptionsFrom, EdgeBroker } from './broker/broker.ts';
import type { CollectorConfig } from './config.ts';
import { FleetController } from './fleet/controller.ts';
import { fleetRoutes } from './fleet/http.ts';
import { collectorRoutes } from './http.ts';
import { IngestPipeline } from './ingest/pipeline.ts';
import { type CollectorMetrics, createCollectorMetrics } from './metrics.ts';
import { buildSink, configuredSinks } from './sinks/from-config.ts';
import {
  DEFAULT_RUNNER_OPTIONS,
  type RunnerOptions,
  SinkRunner,
  type SinkRunnerHandle,
} from './sinks/runner.ts';
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
  /** The fleet console's URL, when fleet.console.enabled. */
  console?: string;
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
  // In-process sinks from the config are built in start(): their factories import the sink's client
  // library, which a collector whose config does not use it never loads (issue 13/14).
  const configured = deps.sinks ? [] : configuredSinks(config);
  const sinkNames: string[] = deps.sinks ? sinks.map((s) => s.name) : configured;
  const startedAt = clock.now();

  let spool: Spool | null = null;
  let pipeline: IngestPipeline | null = null;
  let broker: EdgeBroker | null = null;
  let runners: SinkRunnerHandle[] = [];
  let http: Awaited<ReturnType<typeof startHttpServer>> | null = null;
  let pruneTimer: ReturnType<Clock['setInterval']> | null = null;
  let fleet: FleetController | null = null;
  let fleetConsole: { url: string; close(): Promise<void> } | null = null;

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
    get runners(): readonly SinkRunnerHandle[] {
      return runners;
    },
    status,
    get fleet(): FleetController | null {
      return fleet;
    },

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
      const fc = config.fleet;
      if (fc) {
        fleet = new FleetController(fc, {
          log: log.child({ component: 'fleet' }),
          clock,
          registry,
          dataDir: config.collector.dataDir,
          publish: (topic, payload) => {
            if (!broker) return Promise.reject(new Error('broker not started'));
            return broker.publishRetained(topic, payload);
          },
          knownAgents: () => {
            try {
              return Object.keys(readCredentialFile(config.mqtt.credentials).agents);
            } catch {
              return [];
            }
          },
        });
      }
      const fl = fleet;
      fl?.open();
      const p = new IngestPipeline(
        spool,
        metrics,
        log,
        { maxInflatedBytes: config.mqtt.maxBatchBytes, maxItems: config.mqtt.maxBatchItems },
        // Committed statuses feed the update report (issue 16) and, with fleet control, the fleet state
        // (issue 15) with the agents' alerts.
        (entries) => {
          for (const e of entries) {
            if (e.kind === 'status') {
              updateMetrics.observe(e.agent, e.value as Status);
              fl?.onStatus(e.value as Status);
            } else if (fl && e.kind === 'alerts' && e.value) fl.onAlert(e.agent, e.value as Alert);
          }
        },
      );
      pipeline = p;
      const runnerOpts = { ...DEFAULT_RUNNER_OPTIONS, ...deps.runner };
      if (threaded) {
        const sp = spool;
        const started = configured.map(
          (name) =>
            new ThreadedSinkRunner(
              name,
              config,
              sp,
              spoolPath,
              metrics,
              log.child({ sink: name }),
              clock,
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
        if (!deps.sinks && sinks.length === 0)
          for (const name of configured) sinks.push(await buildSink(name, config, log.child({ sink: name })));
        for (const s of sinks) await s.start();
        const inProcess = sinks.map(
          (s) => new SinkRunner(s, spool!, metrics, log.child({ sink: s.name }), clock, runnerOpts),
        );
        runners = inProcess;
        for (const r of inProcess) await r.start();
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
        ...(fl
          ? {
              onAgentConnect: (a: string) => fl.onConnect(a),
              onAgentDisconnect: (a: string) => fl.onDisconnect(a),
            }
          : {}),
      });
      const mqtt = await broker.start();
      await fl?.start();
      const adminToken = () => (fc?.adminTokenFile ? readSecretFile(fc.adminTokenFile) : null);
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
          extra: fl ? fleetRoutes(fl, adminToken) : {},
        }),
        log,
        config.artifacts &&
          artifactHandler({
            dir: config.artifacts.dir,
            credentials,
            authLimits: brokerOptionsFrom(config.mqtt).authLimits,
            log,
          }),
        config.http.tls,
      );
      if (fl && fc?.console.enabled) {
        const { startConsole } = await import('./fleet/console.ts');
        fleetConsole = await startConsole(
          fc.console.listen,
          fl,
          adminToken,
          log.child({ component: 'console' }),
          clock,
          config.http.tls,
        );
      }
      log.info(
        { mqtt: mqtt.map((m) => m.url), http: http.url, sinks: sinkNames, sinkThreads: threaded },
        'collector started',
      );
      return { mqtt, http: http.url, ...(fleetConsole ? { console: fleetConsole.url } : {}) };
    },

    async stop(): Promise<void> {
      if (pruneTimer) clock.clearInterval(pruneTimer);
      pruneTimer = null;
      await fleetConsole?.close();
      fleetConsole = null;
      await http?.close();
      http = null;
      fleet?.stop();
      fleet = null;
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
