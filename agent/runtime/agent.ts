// The agent runtime's composition root and lifecycle: builds the parts from the configuration, starts
// and stops them, reloads (SIGHUP or fleet control) and answers for them. The parts, one responsibility
// each (STYLE.md: "rooms you read in one sitting", issue 13):
//
//   ingress.ts      frame → decode → clock hold / refusals → rules → windows; emitted items → pending
//   checkpoint.ts   the transaction: pending items + engine state + frame keys, then the acks
//   backpressure.ts pausing redeliverable sources while too many frames wait for a checkpoint
//   clock-hold.ts   readings held while the wall clock is unsynchronised
//   engines.ts      window and rule engines from config + snapshot
//   counters.ts     the one way of counting; metrics.ts (prom-client) and status.ts derive from it
//   status.ts       wire status, /status, health view, gauges
//   sources.ts      the running sources; uplink-slot.ts the uplink and the downlink subscriptions
//
//   sources ─frames─▶ decoders ─readings─▶ windows ─summaries─▶ rules
//                                   └──────────────▶ rules ─alerts─┐
//   pending items (summaries, alerts, late events) ──checkpoint tx──▶ outbox ──▶ uplink
import type { Registry } from 'prom-client';
import { type Clock, systemClock, type Timer } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import type { Status } from '../../shared/model.ts';
import type { UpdateReport } from '../../shared/release.ts';
import type { AgentConfig } from '../config.ts';
import type { Outbox } from '../outbox/outbox.ts';
import { createSource } from '../sources/index.ts';
import { type DownlinkHandler, MqttUplink } from '../uplink/mqtt-uplink.ts';
import { Backpressure } from './backpressure.ts';
import { Checkpointer } from './checkpoint.ts';
import { engineCheckpoints } from './checkpoint-parts.ts';
import { BUILD_DATE_MS, ClockGuard } from './clock-guard.ts';
import { ClockHold } from './clock-hold.ts';
import { AgentCounters } from './counters.ts';
import { buildEngines, type EngineSnapshot, type Engines } from './engines.ts';
import { Ingress } from './ingress.ts';
import { AgentMetrics } from './metrics.ts';
import { openOutbox } from './outbox-file.ts';
import { ProcessingClock } from './processing-clock.ts';
import { type SourceFactory, SourceSet } from './sources.ts';
import {
  type AgentHealth,
  foldEngineCounters,
  health,
  notStartedHealth,
  type RuntimeParts,
  type StatusFields,
  statusDetail,
  updateGauges,
  wireStatus,
} from './status.ts';
import { UplinkSlot } from './uplink-slot.ts';

export type { AgentHealth, StatusFields } from './status.ts';

export interface AgentDeps {
  log: Logger;
  version: string;
  clock?: Clock;
  registry?: Registry;
  /** Overrides the outbox (tests); default: SQLite at `${dataDir}/outbox.db`. */
  outbox?: Outbox;
  /** Overrides source construction (in-process tests with fake sources); default: createSource. */
  sourceFactory?: SourceFactory;
  /** Issue 16: the updater's report for the status (agent/update/updater.ts). */
  updateReport?: () => UpdateReport;
}

/** What a reload did: applied (and what it restarted), or refused with the reason (nothing changed). */
export type ReloadResult =
  | { applied: true; sourcesChanged: boolean; uplinkChanged: boolean }
  | { applied: false; reason: string };

const TICK_MS = 250;

export class Agent {
  readonly metrics: AgentMetrics;
  private readonly counters = new AgentCounters();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly version: string;
  private readonly clockGuard: ClockGuard;
  /** The engines' clock: monotonic time stands still while sources are paused (processing-clock.ts). */
  private readonly processing: ProcessingClock;
  private readonly hold: ClockHold;
  private readonly backpressure: Backpressure;
  private readonly startedAt: number;
  private config: AgentConfig;
  private outbox!: Outbox;
  private checkpointer!: Checkpointer;
  /** The engines' rows in the checkpoint (incremental, issue 14). */
  private readonly parted: ReturnType<typeof engineCheckpoints>;
  /** One object for the agent's life (ingress and status hold it); reload replaces its fields. */
  private readonly engines = {} as Engines;
  private ingress!: Ingress;
  private readonly uplink: UplinkSlot;
  private readonly sources: SourceSet;
  private timer: Timer | null = null;
  private running = false;
  /** Reloads run one after another (SIGHUP and fleet control may ask at the same time). */
  private reloads: Promise<unknown> = Promise.resolve();
  private readonly parts: RuntimeParts;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.version = deps.version;
    this.metrics = new AgentMetrics(this.counters, deps.registry);
    this.clockGuard = new ClockGuard(this.clock, BUILD_DATE_MS, config.limits.minEventTime);
    this.processing = new ProcessingClock(this.clock);
    this.hold = new ClockHold(this.clock);
    this.parted = engineCheckpoints(this.clock);
    this.backpressure = new Backpressure(this.processing, this.counters, this.log);
    this.startedAt = this.clock.now();
    if (deps.outbox) this.outbox = deps.outbox;
    this.sources = new SourceSet(deps.sourceFactory ?? createSource, {
      log: this.log,
      clock: this.clock,
      metrics: this.metrics.registry,
    });
    this.uplink = new UplinkSlot(
      (up) =>
        // the config's `uplink:` keys are the runner's options (as mqtt.descriptor.ts create(): one mapping)
        new MqttUplink({ ...up, agentId: config.agent.id }, this.outbox, {
          log: this.log.child({ component: 'uplink' }),
          clock: this.clock,
          getStatus: () => this.wireStatus(),
          registry: this.metrics.registry, // the five edgeflow_agent_uplink_*_total counters (issue 12 item 6)
          stageLatency: this.metrics.deliveryStage,
        }),
    );
    const self = this;
    this.parts = {
      agentId: config.agent.id, // cannot change on reload
      version: this.version,
      startedAt: this.startedAt,
      clock: this.clock,
      clockGuard: this.clockGuard,
      counters: this.counters,
      metrics: this.metrics,
      engines: this.engines,
      get outbox() {
        return self.outbox;
      },
      sources: this.sources,
      get checkpointer() {
        return self.checkpointer;
      },
      hold: this.hold,
      backpressure: this.backpressure,
      uplink: this.uplink,
      get running() {
        return self.running;
      },
      statusFields: null,
      updateReport: deps.updateReport,
    };
  }

  async start(): Promise<void> {
    const { agent } = this.config;
    if (!this.outbox) this.outbox = openOutbox(this.config, this.log);
    this.checkpointer = new Checkpointer({
      outbox: this.outbox,
      clock: this.clock,
      log: this.log,
      counters: this.counters,
      deliveryStage: this.metrics.deliveryStage,
      settings: () => ({ ...this.config.checkpoint, maxPendingFrames: this.config.limits.maxPendingFrames }),
      state: () => this.stateEntries(),
      stateWritten: () => {
        this.parted.windows.written();
        this.parted.rules.written();
      },
      onCommitted: () => this.backpressure.resume(this.sources.entries),
      onWritten: (committed) => this.uplink.notify(committed),
      onFailed: (pending) => {
        if (pending >= this.config.limits.maxPendingFrames)
          this.backpressure.pause(this.sources.entries, pending);
      },
    });
    this.ingress = new Ingress({
      clock: this.clock,
      processing: this.processing,
      log: this.log,
      counters: this.counters,
      clockGuard: this.clockGuard,
      hold: this.hold,
      engines: this.engines,
      checkpointer: this.checkpointer,
      backpressure: this.backpressure,
      maxPendingFrames: () => this.config.limits.maxPendingFrames,
      overPending: () => this.checkpointAtLimit(),
    });
    const corrupt = (key: string) => (err: unknown) => this.stateReset(key, err);
    this.hold.restore(this.checkpointer.read('held', corrupt('held')));
    const snap = {
      windows: this.readParted('windows', corrupt('windows')),
      rules: this.readParted('rules', corrupt('rules')),
    };
    this.rebuildEngines(snap);
    foldEngineCounters(this.parts, true);
    this.running = true;
    this.checkpointer.start();
    if (this.config.uplink) this.uplink.start(this.config.uplink);
    await this.sources.start(this.config, this.ingress, this.checkpointer);
    this.timer = this.clock.setInterval(() => this.tick(), TICK_MS);
    this.log.info(
      {
        agent: agent.id,
        sources: this.sources.entries.length,
        windows: this.config.windows.length,
        rules: this.config.rules.length,
      },
      'agent started',
    );
  }

  /** The checkpoint's state entries, built one at a time: each is encoded before the next (issue 14). */
  private *stateEntries(): Generator<[string, string | null]> {
    yield* this.parted.windows.entries(this.engines.windows);
    yield* this.parted.rules.entries(this.engines.rules);
    yield ['held', this.hold.toCheckpoint()];
  }

  /** A checkpointed state that cannot be read starts fresh: data lost, so ERROR and a counter. */
  private stateReset(key: string, err: unknown): void {
    this.counters.stateResets.inc({ state: key });
    this.log.error(
      { err, key, code: 'STORE_CORRUPT' },
      `checkpointed ${key} state is unreadable; starting it fresh (its open windows/alert state are lost)`,
    );
  }

  /** An engine's snapshot of the last checkpoint (header + rows); undefined when none or unreadable. */
  private readParted(engine: 'windows' | 'rules', onCorrupt: (err: unknown) => void): unknown {
    try {
      return this.parted[engine].read(this.outbox);
    } catch (err) {
      onCorrupt(err);
      return undefined;
    }
  }

  private rebuildEngines(snap: EngineSnapshot): void {
    const built = buildEngines(this.config, snap, this.processing, this.ingress, (k, e) =>
      this.stateReset(k, e),
    );
    this.engines.windows = built.windows;
    this.engines.rules = built.rules;
  }

  /**
   * limits.maxPendingFrames frames wait for a checkpoint: write one now; only if it fails do the sources
   * pause (onFailed), until one succeeds. Paused already: the timer retries, not every frame. It paused
   * first and then wrote, so a healthy agent taking more than maxPendingFrames frames a second (bench/
   * nodered.ts: 50,000 frames every 0.4 s) logged a back-pressure warning and counted
   * edgeflow_agent_backpressure_total at every such checkpoint, with nothing ever held back (issue 14).
   */
  private checkpointAtLimit(): void {
    if (!this.backpressure.paused) this.checkpointer.checkpoint();
  }

  private tick(): void {
    const step = this.clockGuard.check();
    if (step !== 0) {
      this.counters.clockJumps.inc();
      this.log.warn({ stepMs: step, synced: this.clockGuard.synced() }, 'wall clock jumped');
    }
    if (this.clockGuard.synced() && this.hold.size > 0) this.ingress.releaseHeld();
    this.engines.windows.tick();
    this.engines.rules.tick();
    if (this.checkpointer.due()) this.checkpointer.checkpoint();
    updateGauges(this.parts);
    foldEngineCounters(this.parts);
  }

  /** Writes the pending items and state now (checkpoint.ts); false when the write failed. */
  checkpoint(): boolean {
    return this.checkpointer.checkpoint();
  }

  // ---- what the agent answers ----

  /** The status object of SPEC.md section 3 (published retained on the uplink). */
  wireStatus(): Status {
    return wireStatus(this.parts);
  }

  /** `/status`: the wire status plus what an operator asks about (link, windows, firing alerts). */
  status(): Record<string, unknown> {
    return statusDetail(this.parts);
  }

  /** `/healthz`. */
  healthy(): boolean {
    return this.running;
  }

  /** Sources open, uplink connected, last checkpoint time (status.ts AgentHealth). Before start: not running. */
  health(): AgentHealth {
    return this.checkpointer ? health(this.parts) : notStartedHealth(this.clockGuard);
  }

  /**
   * Downlink (fleet control, issue 15): `onMessage` gets every message on `topic` (e.g.
   * `edgeflow/v1/{agent}/down`) from the uplink broker, QoS 1, for as long as the agent runs, across
   * reconnects and across reloads that rebuild the uplink. Returns the unsubscribe function. Without an
   * uplink in the configuration nothing arrives until a reload adds one.
   */
  subscribeDownlink(topic: string, onMessage: DownlinkHandler): () => void {
    return this.uplink.subscribe(topic, onMessage);
  }

  /**
   * Adds fields to the status (wire and /status) from outside the runtime: fleet control reports
   * `labels` and `fleet` (shared/fleet.ts) this way. One provider; a later call replaces it.
   */
  setStatusFields(fields: () => StatusFields): void {
    this.parts.statusFields = fields;
  }

  /** Publishes the retained status now (e.g. right after a fleet document was applied); false if the link is down. */
  publishStatusNow(): boolean {
    return this.uplink.publishStatusNow();
  }

  // ---- lifecycle ----

  /**
   * Applies an already validated configuration (SIGHUP: agent/main.ts; fleet control: agent/fleet) and
   * resolves once it is in effect. Window/rule state is kept where the definition did not change; sources
   * and the uplink are restarted only when their configuration changed. Reloads are serialised. Refused
   * (nothing changes) when agent.id or agent.dataDir would change, or when the agent is not running.
   * Rejects only if restarting a part failed (e.g. a source that cannot start); the engines are already
   * rebuilt then.
   */
  reload(next: AgentConfig): Promise<ReloadResult> {
    const run = this.reloads.then(() => this.applyReload(next));
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async applyReload(next: AgentConfig): Promise<ReloadResult> {
    if (!this.running) return { applied: false, reason: 'agent is not running' };
    if (next.agent.id !== this.config.agent.id || next.agent.dataDir !== this.config.agent.dataDir) {
      const reason = 'agent.id and agent.dataDir cannot change without a restart';
      this.log.error(`reload refused: ${reason}`);
      return { applied: false, reason };
    }
    const sourcesChanged = JSON.stringify(next.sources) !== JSON.stringify(this.config.sources);
    const uplinkChanged = JSON.stringify(next.uplink) !== JSON.stringify(this.config.uplink);
    if (sourcesChanged) await this.sources.stop();
    if (uplinkChanged) await this.uplink.stop();
    // The snapshot is taken AFTER the awaits above: sources that keep running (or stop slowly) deliver
    // frames meanwhile, and a snapshot taken before would lose their readings from the engines while
    // the checkpoint below acknowledges their frames. From here to the rebuild nothing awaits.
    this.checkpointer.checkpoint();
    const snap = { windows: this.engines.windows.snapshot(), rules: this.engines.rules.snapshot() };
    this.config = next;
    this.rebuildEngines(snap);
    if (uplinkChanged && next.uplink) this.uplink.start(next.uplink);
    if (sourcesChanged) await this.sources.start(next, this.ingress, this.checkpointer);
    this.log.info({ sourcesChanged, uplinkChanged }, 'configuration reloaded');
    return { applied: true, sourcesChanged, uplinkChanged };
  }

  /** SIGTERM: stop reading, write a final checkpoint, give the uplink a moment to drain, close. */
  async stop(drainMs = 3000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) this.clock.clearInterval(this.timer);
    this.timer = null;
    this.checkpointer.stop();
    await this.sources.stop();
    this.checkpointer.checkpoint();
    await this.uplink.stop(drainMs);
    this.outbox.close();
    this.log.info('agent stopped');
  }
}
