// The agent runtime: owns the policy around the plugins (STYLE.md: "framework wrappers own policy;
// plugins only do I/O or arithmetic").
//
//   sources ─frames─▶ decoders ─readings─▶ windows ─summaries─▶ rules
//                                   └──────────────▶ rules ─alerts─┐
//   pending items (summaries, alerts, late events) ──checkpoint tx──▶ outbox ──▶ uplink
//
// Delivery (SPEC.md section 5, issue 4): every `checkpoint.interval` the runtime writes, in ONE SQLite
// transaction, the items emitted since the last checkpoint together with the window and rule state.
// Only after that commit are MQTT frames acknowledged to their broker. A crash (SIGKILL) therefore
// restarts from a state that matches exactly the frames the broker considers delivered; everything
// after it is redelivered (QoS 1, persistent session) and replayed. Serial frames cannot be
// redelivered: their loss on a crash is bounded by the checkpoint interval and reported.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { type Clock, systemClock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { Alert, LateEvent, Reading, Status, Summary } from '../../shared/model.ts';
import type { AgentConfig } from '../config.ts';
import { createDecoder } from '../decoders/index.ts';
import { FrameError, type Decoder } from '../decoders/decoder.ts';
import type { Outbox, OutboxItem } from '../outbox/outbox.ts';
import { SqliteOutbox } from '../outbox/sqlite.ts';
import { RuleEngine } from '../rules/engine.ts';
import type { RawFrame, Source } from '../sources/source.ts';
import { createSource } from '../sources/index.ts';
import { MqttUplink } from '../uplink/mqtt-uplink.ts';
import { WindowEngine } from '../windows/engine.ts';
import { ClockGuard } from './clock-guard.ts';
import { AgentMetrics } from './metrics.ts';
import { toRuleSpecs, toWindowSpecs } from './specs.ts';

export interface AgentDeps {
  log: Logger;
  version: string;
  clock?: Clock;
  registry?: Registry;
  /** Overrides the outbox (tests); default: SQLite at `${dataDir}/outbox.db`. */
  outbox?: Outbox;
}

/** How far a device timestamp may lie in the future before the reading is refused. */
const FUTURE_TOLERANCE_MS = 60_000;
const TICK_MS = 250;

interface HeldReading {
  reading: Reading;
  mono: number;
}

export class Agent {
  readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly badFrameLog: RateLimitedLog;
  private readonly clockGuard: ClockGuard;
  private config: AgentConfig;
  private outbox!: Outbox;
  private windows!: WindowEngine;
  private rules!: RuleEngine;
  private uplink: MqttUplink | null = null;
  private sources: { source: Source; decoder: Decoder; device: string | undefined }[] = [];
  private pendingItems: OutboxItem[] = [];
  private pendingAcks: (() => void)[] = [];
  /** Arrival-time readings received while the wall clock is unsynchronised, stamped on sync. */
  private held: HeldReading[] = [];
  private paused = false;
  private timers: object[] = [];
  private lastCheckpointMono = 0;
  private readonly startedAt: number;
  private running = false;
  private checkpointFailures = 0;
  private readonly counters = { readingsIn: 0, badFrames: 0, late: 0, summaries: 0, alerts: 0, checkpoints: 0, droppedUnsynced: 0, droppedBackpressure: 0 };

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.metrics = new AgentMetrics(deps.registry);
    this.badFrameLog = new RateLimitedLog(this.log);
    this.clockGuard = new ClockGuard(this.clock);
    this.startedAt = this.clock.now();
    this.version = deps.version;
    if (deps.outbox) this.outbox = deps.outbox;
  }
  private readonly version: string;

  async start(): Promise<void> {
    const { agent, buffer } = this.config;
    if (!this.outbox) {
      mkdirSync(agent.dataDir, { recursive: true });
      this.outbox = SqliteOutbox.open(join(agent.dataDir, 'outbox.db'), {
        maxBytes: buffer.maxBytes,
        onFull: buffer.onFull,
        synchronous: buffer.synchronous,
        log: this.log,
      });
    }
    this.buildEngines(this.readCheckpoint());
    this.running = true;
    if (this.config.uplink) this.startUplink();
    await this.startSources();
    this.timers.push(this.clock.setInterval(() => this.tick(), TICK_MS));
    this.log.info({ agent: agent.id, sources: this.sources.length, windows: this.config.windows.length, rules: this.config.rules.length }, 'agent started');
  }

  private readCheckpoint(): { windows?: unknown; rules?: unknown } {
    const parse = (key: string): unknown => {
      const raw = this.outbox.readCheckpoint(key);
      if (raw === undefined) return undefined;
      try {
        return JSON.parse(raw);
      } catch (err) {
        this.log.error({ err, key }, 'checkpoint unreadable; starting that state fresh');
        return undefined;
      }
    };
    return { windows: parse('windows'), rules: parse('rules') };
  }

  private buildEngines(snap: { windows?: unknown; rules?: unknown }): void {
    const cfg = this.config;
    const windowSpecs = toWindowSpecs(cfg.windows);
    const windowOpts = {
      agentId: cfg.agent.id,
      maxOutOfOrder: cfg.watermark.maxOutOfOrder,
      idleTimeout: cfg.watermark.idleTimeout,
      maxKeys: cfg.limits.maxKeys,
      maxOpenWindows: cfg.limits.maxOpenWindows,
      clock: this.clock,
    };
    const windowOut = { summary: (s: Summary) => this.onSummary(s), late: (e: LateEvent) => this.onLate(e) };
    this.windows = snap.windows !== undefined ? WindowEngine.restore(snap.windows, windowSpecs, windowOpts, windowOut) : new WindowEngine(windowSpecs, windowOpts, windowOut);
    const ruleSpecs = toRuleSpecs(cfg.rules);
    const ruleOpts = { agentId: cfg.agent.id, clock: this.clock };
    const ruleOut = { alert: (a: Alert) => this.onAlert(a) };
    this.rules = snap.rules !== undefined ? RuleEngine.restore(snap.rules, ruleSpecs, ruleOpts, ruleOut) : new RuleEngine(ruleSpecs, ruleOpts, ruleOut);
  }

  private startUplink(): void {
    const up = this.config.uplink!;
    this.uplink = new MqttUplink(
      {
        agentId: this.config.agent.id,
        urls: up.urls,
        username: up.username,
        passwordFile: up.passwordFile,
        ca: up.ca,
        cert: up.cert,
        key: up.key,
        rejectUnauthorized: up.rejectUnauthorized,
        batch: up.batch,
        maxInFlight: up.maxInFlight,
        drainRate: up.drainRate,
        compress: up.compress,
        statusInterval: up.statusInterval,
      },
      this.outbox,
      { log: this.log.child({ component: 'uplink' }), clock: this.clock, getStatus: () => this.wireStatus() },
    );
    this.uplink.start();
  }

  private async startSources(): Promise<void> {
    for (const cfg of this.config.sources) {
      const source = createSource(cfg, this.config.agent.id, {
        log: this.log.child({ source: cfg.name }),
        clock: this.clock,
        metrics: this.metrics.registry,
      });
      const entry = { source, decoder: createDecoder(cfg.format), device: 'device' in cfg ? cfg.device : undefined };
      this.sources.push(entry);
      await source.start((frame) => this.onFrame(entry, frame));
    }
  }

  // ---- the data path -------------------------------------------------------------------------

  private onFrame(entry: { source: Source; decoder: Decoder; device: string | undefined }, frame: RawFrame): void {
    const src = entry.source.name;
    this.metrics.framesIn.inc({ source: src });
    if (frame.ack) this.pendingAcks.push(frame.ack);
    let readings: Reading[];
    try {
      readings = entry.decoder.decode(frame.payload, {
        device: frame.fields?.device ?? entry.device,
        metric: frame.fields?.metric,
        arrivalTs: frame.receivedAt,
      });
    } catch (err) {
      const reason = err instanceof FrameError ? err.reason : 'decoder_error';
      this.badFrame(src, reason, frame, err);
      return;
    }
    for (const r of readings) this.accept(src, r, frame);
    if (this.pendingAcks.length >= this.config.limits.maxPendingFrames) this.applyBackpressure();
  }

  private badFrame(src: string, reason: string, frame: RawFrame, err: unknown): void {
    this.counters.badFrames++;
    this.metrics.badFrames.inc({ source: src, reason });
    this.badFrameLog.warn(`bad_frame:${src}:${reason}`, { source: src, reason, frame: frame.payload.subarray(0, 120).toString('utf8'), err: (err as Error).message }, 'bad frame skipped');
  }

  private accept(src: string, r: Reading, frame: RawFrame): void {
    if (r.arrivalTime && !this.clockGuard.synced()) {
      // No trustworthy wall clock yet: keep the reading with its monotonic arrival time and stamp it
      // once the clock syncs, instead of emitting windows dated in 1970 (issue 4, "Clocks").
      if (this.held.length >= this.config.limits.maxPendingFrames) {
        this.counters.droppedUnsynced++;
        this.metrics.readingsDropped.inc({ reason: 'unsynced_clock_buffer_full' });
        return;
      }
      this.held.push({ reading: r, mono: this.clock.monotonic() });
      return;
    }
    if (r.ts < this.clockGuard.minEventTime()) {
      this.badFrame(src, 'timestamp_too_old', frame, new Error(`timestamp ${r.ts} is before ${new Date(this.clockGuard.minEventTime()).toISOString()}`));
      return;
    }
    if (this.clockGuard.synced() && r.ts > this.clockGuard.maxEventTime(FUTURE_TOLERANCE_MS)) {
      this.badFrame(src, 'timestamp_in_future', frame, new Error(`timestamp ${new Date(r.ts).toISOString()} is in the future`));
      return;
    }
    this.counters.readingsIn++;
    this.metrics.readingsIn.inc({ source: src });
    this.windows.ingest(r);
    this.rules.onReading(r);
  }

  private onSummary(s: Summary): void {
    this.counters.summaries++;
    this.metrics.summariesOut.inc({ window: s.window.name });
    this.pendingItems.push({ kind: 'summaries', id: s.id, rev: s.rev, ts: s.window.start, body: s });
    this.rules.onSummary(s);
  }

  private onLate(e: LateEvent): void {
    this.counters.late++;
    this.metrics.lateEvents.inc({ window: e.window, action: 'forwarded' });
    this.pendingItems.push({ kind: 'late', id: e.id, rev: 0, ts: e.ts, body: e });
  }

  private onAlert(a: Alert): void {
    this.counters.alerts++;
    this.metrics.alerts.inc({ rule: a.rule, state: a.state });
    this.pendingItems.push({ kind: 'alerts', id: a.id, rev: 0, ts: a.ts, body: a });
  }

  // ---- time ----------------------------------------------------------------------------------

  private tick(): void {
    const step = this.clockGuard.check();
    if (step !== 0) {
      this.metrics.clockJumps.inc();
      this.log.warn({ stepMs: step, synced: this.clockGuard.synced() }, 'wall clock jumped');
    }
    if (this.clockGuard.synced() && this.held.length > 0) this.releaseHeld();
    this.windows.tick();
    this.rules.tick();
    if (this.clock.monotonic() - this.lastCheckpointMono >= this.config.checkpoint.interval || this.pendingItems.length >= 10_000) {
      this.checkpoint();
    }
    this.updateGauges();
  }

  private releaseHeld(): void {
    const now = this.clock.now();
    const mono = this.clock.monotonic();
    const held = this.held;
    this.held = [];
    for (const h of held) this.accept('held', { ...h.reading, ts: Math.round(now - (mono - h.mono)), arrivalTime: true }, { payload: Buffer.alloc(0), receivedAt: now });
    this.log.info({ readings: held.length }, 'wall clock synchronised; stamped readings held while it was not');
  }

  /** Writes emitted items and engine state in one transaction, then acknowledges the frames. */
  checkpoint(): boolean {
    this.lastCheckpointMono = this.clock.monotonic();
    const state = new Map<string, string>([
      ['windows', JSON.stringify(this.windows.snapshot())],
      ['rules', JSON.stringify(this.rules.snapshot())],
    ]);
    try {
      const res = this.outbox.append(this.pendingItems, state);
      if (res.dropped > 0) this.metrics.outboxDropped.inc({ kind: 'summaries', reason: 'full' }, res.dropped);
      if (res.rejected > 0) this.metrics.outboxDropped.inc({ kind: 'any', reason: 'rejected' }, res.rejected);
    } catch (err) {
      // Disk full or read-only: keep the items and the un-acked frames in memory and retry; MQTT
      // brokers will redeliver if we die meanwhile. Never crash (issue 4).
      this.checkpointFailures++;
      this.metrics.checkpoints.inc({ result: 'error' });
      if (this.checkpointFailures === 1 || this.checkpointFailures % 60 === 0) this.log.error({ err, failures: this.checkpointFailures }, 'checkpoint failed; retrying');
      if (this.pendingAcks.length >= this.config.limits.maxPendingFrames) this.applyBackpressure();
      return false;
    }
    this.checkpointFailures = 0;
    this.counters.checkpoints++;
    this.metrics.checkpoints.inc({ result: 'ok' });
    this.pendingItems = [];
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    for (const ack of acks) ack();
    if (this.paused) this.releaseBackpressure();
    this.uplink?.notify();
    return true;
  }

  private applyBackpressure(): void {
    if (this.paused) return;
    this.paused = true;
    for (const { source } of this.sources) source.pause();
    this.log.warn({ pendingFrames: this.pendingAcks.length }, 'back-pressure: sources paused until the next checkpoint');
    this.checkpoint();
  }

  private releaseBackpressure(): void {
    this.paused = false;
    for (const { source } of this.sources) source.resume();
  }

  private updateGauges(): void {
    const ws = this.windows.stats();
    this.metrics.openWindows.set(ws.openWindows);
    this.metrics.alertsFiring.set(this.rules.firing().length);
    const ob = this.outbox.stats();
    this.metrics.outboxItems.set(ob.items);
    this.metrics.outboxBytes.set(ob.bytes);
    this.metrics.outboxOldestAge.set(ob.oldestTs === null ? 0 : Math.max(0, (this.clock.now() - ob.oldestTs) / 1000));
    this.metrics.uplinkConnected.set(this.uplink?.state().connected ? 1 : 0);
    this.metrics.pendingFrames.set(this.pendingAcks.length);
    this.metrics.clockSynced.set(this.clockGuard.synced() ? 1 : 0);
    for (const { source } of this.sources) {
      const st = source.status();
      this.metrics.sourceUp.set({ source: st.name, type: st.type }, st.state === 'up' ? 1 : 0);
    }
  }

  // ---- status --------------------------------------------------------------------------------

  /** The status object of SPEC.md section 3 (published retained on the uplink). */
  wireStatus(): Status {
    const ob = this.outbox.stats();
    return {
      agent: this.config.agent.id,
      version: this.version,
      startedAt: this.startedAt,
      ts: this.clock.now(),
      clockSynced: this.clockGuard.synced(),
      outbox: { items: ob.items, bytes: ob.bytes, oldestTs: ob.oldestTs },
      sources: Object.fromEntries(this.sources.map(({ source }) => [source.name, source.status()])),
      counters: { ...this.counters, outboxDropped: Object.values(ob.dropped).reduce((a, b) => a + b, 0), outboxRejected: ob.rejected },
    };
  }

  /** `/status`: the wire status plus what an operator asks about (link, windows, firing alerts). */
  status(): Record<string, unknown> {
    return {
      ...this.wireStatus(),
      uplink: this.uplink?.state() ?? null,
      windows: this.windows.stats(),
      rules: this.rules.stats(),
      firing: this.rules.firing(),
      outboxDetail: this.outbox.stats(),
      pendingFrames: this.pendingAcks.length,
      heldUnsynced: this.held.length,
      paused: this.paused,
    };
  }

  healthy(): boolean {
    return this.running;
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** SIGHUP: new config; window/rule state is kept where the definition did not change. */
  async reload(next: AgentConfig): Promise<void> {
    if (next.agent.id !== this.config.agent.id || next.agent.dataDir !== this.config.agent.dataDir) {
      this.log.error('reload refused: agent.id and agent.dataDir cannot change without a restart');
      return;
    }
    this.checkpoint();
    const snap = { windows: this.windows.snapshot(), rules: this.rules.snapshot() };
    const sourcesChanged = JSON.stringify(next.sources) !== JSON.stringify(this.config.sources);
    const uplinkChanged = JSON.stringify(next.uplink) !== JSON.stringify(this.config.uplink);
    if (sourcesChanged) await this.stopSources();
    if (uplinkChanged && this.uplink) {
      await this.uplink.stop();
      this.uplink = null;
    }
    this.config = next;
    this.buildEngines(snap);
    if (uplinkChanged && next.uplink) this.startUplink();
    if (sourcesChanged) await this.startSources();
    this.log.info({ sourcesChanged, uplinkChanged }, 'configuration reloaded');
  }

  private async stopSources(): Promise<void> {
    await Promise.all(this.sources.map(({ source }) => source.stop()));
    this.sources = [];
  }

  /** SIGTERM: stop reading, write a final checkpoint, give the uplink a moment to drain, close. */
  async stop(drainMs = 3000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const t of this.timers) this.clock.clearInterval(t);
    this.timers = [];
    await this.stopSources();
    this.checkpoint();
    if (this.uplink) {
      await this.uplink.flush(drainMs).catch(() => undefined);
      await this.uplink.stop();
    }
    this.outbox.close();
    this.log.info('agent stopped');
  }
}
