// The agent runtime: owns the policy around the plugins (STYLE.md: "framework wrappers own policy;
// plugins only do I/O or arithmetic").
//
//   sources ─frames─▶ decoders ─readings─▶ windows ─summaries─▶ rules
//                                   └──────────────▶ rules ─alerts─┐
//   pending items (summaries, alerts, late events) ──checkpoint tx──▶ outbox ──▶ uplink
//
// Delivery (SPEC.md section 5, issue 4): the runtime writes, in ONE SQLite transaction, the items emitted
// since the last checkpoint together with the window and rule state: soon after an item is emitted
// (group commit, at most once per `checkpoint.minInterval`, issue 19), otherwise every
// `checkpoint.interval`. Only after that commit are MQTT frames acknowledged to their broker. A crash
// (SIGKILL) therefore restarts from a state that matches exactly the frames the broker considers
// delivered; everything after it is redelivered (QoS 1, persistent session) and replayed. Serial frames cannot be
// redelivered: their loss on a crash is bounded by the checkpoint interval and reported.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { memoryUsage } from 'node:process';
import type { Counter, Registry } from 'prom-client';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { Alert, LateEvent, Reading, Status, Summary } from '../../shared/model.ts';
import type { UpdateReport } from '../../shared/release.ts';
import type { AgentConfig } from '../config.ts';
import { type Decoder, FrameError } from '../decoders/decoder.ts';
import { createDecoder } from '../decoders/index.ts';
import type { Outbox, OutboxItem } from '../outbox/outbox.ts';
import { SqliteOutbox } from '../outbox/sqlite.ts';
import { RuleEngine } from '../rules/engine.ts';
import { createSource } from '../sources/index.ts';
import type { RawFrame, Source, SourceContext } from '../sources/source.ts';
import { MqttUplink } from '../uplink/mqtt-uplink.ts';
import { WindowEngine } from '../windows/engine.ts';
import { decodeCheckpointValue, encodeCheckpointValue } from './checkpoint-codec.ts';
import { BUILD_DATE_MS, ClockGuard } from './clock-guard.ts';
import { AgentMetrics } from './metrics.ts';
import { ProcessingClock } from './processing-clock.ts';
import { toRuleSpecs, toWindowSpecs } from './specs.ts';

export interface AgentDeps {
  log: Logger;
  version: string;
  clock?: Clock;
  registry?: Registry;
  /** Overrides the outbox (tests); default: SQLite at `${dataDir}/outbox.db`. */
  outbox?: Outbox;
  /** Overrides source construction (in-process tests with fake sources); default: createSource. */
  sourceFactory?: (cfg: AgentConfig['sources'][number], agentId: string, ctx: SourceContext) => Source;
  /** Issue 16: the updater's report for the status (agent/update/updater.ts). */
  updateReport?: () => UpdateReport;
}

type SourceEntry = { source: Source; decoder: Decoder; device: string | undefined; redeliverable: boolean };

/** How far a device timestamp may lie in the future before the reading is refused. */
const FUTURE_TOLERANCE_MS = 60_000;
const TICK_MS = 250;
/**
 * Group commit window after the first emitted item (issue 19): the windows of one window end close in
 * a burst (every device's reading that moves its watermark past the end), which reaches the agent over
 * several event-loop turns. Committing the first item at once and the rest minInterval later doubled
 * the checkpoints in bench/sdcard.ts (110 instead of 60 a minute: 392 instead of 295 MiB/h written).
 */
const EMIT_GROUP_MS = 25;
/**
 * Alerts skip the group window and wait at most this long after the previous checkpoint instead of
 * minInterval: reading → alert in Kafka p99 ≤ 300 ms (issue 19) left no room for a 100 ms wait on a
 * loaded gateway (bench/realtime.ts: p99 315–375 ms at load 14–20 with minInterval). Alert storms are
 * short (rules have hysteresis and `for`), so the extra checkpoints are bounded in time.
 */
const ALERT_MIN_SPACING_MS = 25;

interface HeldReading {
  reading: Reading;
  mono: number;
  source: string;
}

/** Exports a cumulative engine counter into a prom-client counter by deltas (a decrease = a reset). */
class DeltaExporter {
  private readonly last = new Map<Counter<string>, Map<string, number>>();
  /** `baseline`: only remember `value` (already exported by a previous process). */
  update(counter: Counter<string>, labels: Record<string, string>, value: number, baseline: boolean): void {
    let per = this.last.get(counter);
    if (!per) {
      per = new Map();
      this.last.set(counter, per);
    }
    const key = JSON.stringify(labels);
    const prev = per.get(key) ?? 0;
    per.set(key, value);
    if (baseline) return;
    const d = value >= prev ? value - prev : value;
    if (d > 0) counter.inc(labels, d);
  }
}

export class Agent {
  readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly badFrameLog: RateLimitedLog;
  private readonly clockGuard: ClockGuard;
  /** The engines' clock: monotonic time stands still while sources are paused (processing-clock.ts). */
  private readonly processing: ProcessingClock;
  private config: AgentConfig;
  private outbox!: Outbox;
  private windows!: WindowEngine;
  private rules!: RuleEngine;
  private uplink: MqttUplink | null = null;
  private sources: SourceEntry[] = [];
  private readonly sourceFactory: NonNullable<AgentDeps['sourceFactory']>;
  /** Frames (every source) taken since the last successful checkpoint: the back-pressure measure. */
  private framesSinceCheckpoint = 0;
  /** Serial (non-redeliverable) readings accepted since the last successful checkpoint: lost on a crash. */
  private atRisk = new Map<string, number>();
  /** Something worth a checkpoint happened (a reading changed state, held readings changed). */
  private dirty = false;
  /** Checkpoint values as last written, to write only the entries that changed. */
  private lastSaved = new Map<string, string>();
  private readonly deltas = new DeltaExporter();
  private pendingItems: OutboxItem[] = [];
  /** Monotonic time each pending item was emitted (same order as pendingItems): the checkpoint stage. */
  private pendingEmittedAt: number[] = [];
  /** The group-commit checkpoint an emitted item scheduled (issue 19); null when none is due. */
  private emitTimer: object | null = null;
  /** Monotonic time emitTimer fires at. */
  private emitDueAt = 0;
  private pendingAcks: (() => void)[] = [];
  /** Keys of the frames in pendingAcks, per source, and of those the last checkpoint acknowledged. */
  private pendingKeys = new Map<string, string[]>();
  private lastKeys = new Map<string, string[]>();
  /** Arrival-time readings received while the wall clock is unsynchronised, stamped on sync. */
  private held: HeldReading[] = [];
  private paused = false;
  private timers: object[] = [];
  private lastCheckpointMono = 0;
  private readonly startedAt: number;
  private running = false;
  private checkpointFailures = 0;
  private readonly counters = {
    readingsIn: 0,
    badFrames: 0,
    late: 0,
    summaries: 0,
    alerts: 0,
    checkpoints: 0,
    checkpointsSkipped: 0,
    checkpointFailures: 0,
    stateResets: 0,
    futureRefused: 0,
    droppedUnsynced: 0,
    droppedBackpressure: 0,
  };

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.metrics = new AgentMetrics(deps.registry);
    this.badFrameLog = new RateLimitedLog(this.log);
    this.clockGuard = new ClockGuard(this.clock, BUILD_DATE_MS, config.limits.minEventTime);
    this.processing = new ProcessingClock(this.clock);
    this.startedAt = this.clock.now();
    this.version = deps.version;
    if (deps.outbox) this.outbox = deps.outbox;
    this.sourceFactory = deps.sourceFactory ?? createSource;
    this.updateReport = deps.updateReport;
  }
  /** Issue 16: the updater's report, `update` in the status (agent/update/updater.ts). */
  private readonly updateReport?: () => UpdateReport;
  private readonly version: string;

  async start(): Promise<void> {
    const { agent, buffer } = this.config;
    if (!this.outbox) {
      try {
        mkdirSync(agent.dataDir, { recursive: true });
      } catch (err) {
        throw new EdgeflowError(
          'STORE_WRITE_FAILED',
          `cannot create the data directory ${agent.dataDir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          { cause: err, retriable: false },
        );
      }
      this.outbox = SqliteOutbox.open(join(agent.dataDir, 'outbox.db'), {
        maxBytes: buffer.maxBytes,
        onFull: buffer.onFull,
        synchronous: buffer.synchronous,
        // Small WAL: the agent's commits are small and periodic; a large WAL could fill a small data
        // partition by itself and then never be checkpointed (test/agent/storage.test.ts, disk full).
        walAutocheckpointBytes: 256 * 1024,
        log: this.log,
      });
    }
    this.buildEngines(this.readCheckpoint());
    this.exportEngineCounters(true);
    this.running = true;
    if (this.config.uplink) this.startUplink();
    await this.startSources();
    this.timers.push(this.clock.setInterval(() => this.tick(), TICK_MS));
    this.log.info(
      {
        agent: agent.id,
        sources: this.sources.length,
        windows: this.config.windows.length,
        rules: this.config.rules.length,
      },
      'agent started',
    );
  }

  private readCheckpoint(): { windows?: unknown; rules?: unknown } {
    const parse = (key: string): unknown => {
      const stored = this.outbox.readCheckpoint(key);
      if (stored === undefined) return undefined;
      try {
        // Plain JSON (any agent version) or deflated (`z1:`, checkpoint-codec.ts).
        const raw = decodeCheckpointValue(stored);
        this.lastSaved.set(key, raw);
        return JSON.parse(raw);
      } catch (err) {
        this.stateReset(key, err);
        return undefined;
      }
    };
    const held = parse('held');
    if (Array.isArray(held)) {
      // Readings held while the clock was unsynchronised: their monotonic arrival is meaningless in this
      // process; they keep their age at the checkpoint (the downtime itself is not counted).
      const mono = this.clock.monotonic();
      for (const h of held as { r: Reading; age: number; source: string }[]) {
        if (h && typeof h === 'object' && h.r && typeof h.age === 'number')
          this.held.push({ reading: h.r, mono: mono - h.age, source: String(h.source) });
      }
    }
    return { windows: parse('windows'), rules: parse('rules') };
  }

  /** A checkpointed state that cannot be read starts fresh: data lost, so ERROR and a counter. */
  private stateReset(key: string, err: unknown): void {
    this.counters.stateResets++;
    this.metrics.stateResets.inc({ state: key });
    this.log.error(
      { err, key, code: 'STORE_CORRUPT' },
      `checkpointed ${key} state is unreadable; starting it fresh (its open windows/alert state are lost)`,
    );
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
      clock: this.processing,
    };
    const windowOut = { summary: (s: Summary) => this.onSummary(s), late: (e: LateEvent) => this.onLate(e) };
    this.windows = new WindowEngine(windowSpecs, windowOpts, windowOut);
    if (snap.windows !== undefined) {
      try {
        this.windows = WindowEngine.restore(snap.windows, windowSpecs, windowOpts, windowOut);
      } catch (err) {
        if (!(err instanceof EdgeflowError) || err.code !== 'STORE_CORRUPT') throw err;
        this.stateReset('windows', err);
      }
    }
    const ruleSpecs = toRuleSpecs(cfg.rules);
    const ruleOpts = { agentId: cfg.agent.id, clock: this.processing, maxKeysPerRule: cfg.limits.maxKeys };
    const ruleOut = { alert: (a: Alert) => this.onAlert(a) };
    this.rules = new RuleEngine(ruleSpecs, ruleOpts, ruleOut);
    if (snap.rules !== undefined) {
      // RuleEngine.restore ignores what it cannot read; an unreadable snapshot is still a loss to report.
      const r = snap.rules as { v?: unknown; rules?: unknown } | null;
      if (r === null || typeof r !== 'object' || r.v !== 1 || !Array.isArray(r.rules)) {
        this.stateReset(
          'rules',
          new EdgeflowError('STORE_CORRUPT', 'rule checkpoint is not a version 1 rule-engine snapshot'),
        );
      } else {
        this.rules = RuleEngine.restore(snap.rules, ruleSpecs, ruleOpts, ruleOut);
      }
    }
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
      {
        log: this.log.child({ component: 'uplink' }),
        clock: this.clock,
        getStatus: () => this.wireStatus(),
        registry: this.metrics.registry, // the five edgeflow_agent_uplink_*_total counters (issue 12 item 6)
        stageLatency: this.metrics.deliveryStage,
      },
    );
    this.uplink.start();
  }

  /** Hands a source the keys its frames had in the last checkpoint (see RawFrame.key). */
  private restoreDelivered(source: Source): void {
    const stored = this.outbox.readCheckpoint(`delivered:${source.name}`);
    if (stored === undefined || !source.restoreDelivered) return;
    try {
      const keys = JSON.parse(decodeCheckpointValue(stored)) as string[];
      source.restoreDelivered(keys);
    } catch (err) {
      this.log.warn(
        { err, source: source.name },
        'delivered-frame keys unreadable; redeliveries may count twice',
      );
    }
  }

  private async startSources(): Promise<void> {
    for (const cfg of this.config.sources) {
      const source = this.sourceFactory(cfg, this.config.agent.id, {
        log: this.log.child({ source: cfg.name }),
        clock: this.clock,
        metrics: this.metrics.registry,
      });
      // Serial lines cannot be redelivered: they are never paused by back-pressure (the port would lose
      // them uncounted in the OS buffer or the device); the runtime drops and counts instead.
      const entry: SourceEntry = {
        source,
        decoder: createDecoder(cfg.format),
        device: 'device' in cfg ? cfg.device : undefined,
        redeliverable: source.type !== 'serial',
      };
      this.sources.push(entry);
      if (!entry.redeliverable) this.atRisk.set(source.name, 0);
      this.restoreDelivered(source);
      await source.start((frame) => this.onFrame(entry, frame), {
        onBadFrame: (reason) =>
          this.badFrame(
            source.name,
            reason,
            { payload: Buffer.alloc(0), receivedAt: this.clock.now() },
            new Error(reason),
          ),
      });
    }
  }

  // ---- the data path -------------------------------------------------------------------------

  private onFrame(entry: SourceEntry, frame: RawFrame): void {
    const src = entry.source.name;
    this.metrics.framesIn.inc({ source: src });
    if (this.paused && !entry.redeliverable) {
      // Back-pressure and a source that cannot be asked to resend: drop with a counter rather than
      // queue without bound (issue 4). The frame is decoded only to count its readings.
      let n = 1;
      try {
        n = entry.decoder.decode(frame.payload, {
          device: frame.fields?.device ?? entry.device,
          metric: frame.fields?.metric,
          arrivalTs: frame.receivedAt,
        }).length;
      } catch {}
      this.counters.droppedBackpressure += n;
      this.metrics.readingsDropped.inc({ reason: 'backpressure' }, n);
      frame.ack?.();
      return;
    }
    this.framesSinceCheckpoint++;
    if (frame.ack) this.pendingAcks.push(frame.ack);
    if (frame.key) {
      const keys = this.pendingKeys.get(src);
      if (keys) keys.push(frame.key);
      else this.pendingKeys.set(src, [frame.key]);
    }
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
    const refused: Refused = { count: 0 };
    for (const r of readings) {
      if (this.accept(src, r, refused) && !entry.redeliverable)
        this.atRisk.set(src, (this.atRisk.get(src) ?? 0) + 1);
    }
    this.countRefused(src, frame, refused);
    if (this.framesSinceCheckpoint >= this.config.limits.maxPendingFrames) this.applyBackpressure();
  }

  private badFrame(src: string, reason: string, frame: RawFrame, err: unknown): void {
    this.counters.badFrames++;
    this.metrics.badFrames.inc({ source: src, reason });
    this.badFrameLog.warn(
      `bad_frame:${src}:${reason}`,
      {
        source: src,
        reason,
        frame: frame.payload.subarray(0, 120).toString('utf8'),
        err: (err as Error).message,
      },
      'bad frame skipped',
    );
  }

  /**
   * bad_frames_total counts frames, not readings (issue 12 item 5): a SenML pack whose ten records are
   * all too old is one bad frame; its readings are counted in readings_dropped_total{reason}.
   */
  private countRefused(src: string, frame: RawFrame, refused: Refused): void {
    if (refused.reason === undefined) return;
    this.metrics.readingsDropped.inc({ reason: refused.reason }, refused.count);
    this.badFrame(src, refused.reason, frame, new Error(`${refused.count} reading(s): ${refused.message}`));
  }

  /** Returns true when the reading went into the windows and rules; a refusal is noted in `refused`. */
  private accept(src: string, r: Reading, refused: Refused): boolean {
    if (r.arrivalTime && !this.clockGuard.synced()) {
      // No trustworthy wall clock yet: keep the reading with its monotonic arrival time and stamp it
      // once the clock syncs, instead of emitting windows dated in 1970 (issue 4, "Clocks").
      if (this.held.length >= this.config.limits.maxPendingFrames) {
        this.counters.droppedUnsynced++;
        this.metrics.readingsDropped.inc({ reason: 'unsynced_clock_buffer_full' });
        return false;
      }
      this.held.push({ reading: r, mono: this.clock.monotonic(), source: src });
      this.dirty = true;
      return false;
    }
    if (r.ts < this.clockGuard.minEventTime()) {
      refused.count++;
      refused.reason ??= 'timestamp_too_old';
      refused.message ??= `timestamp ${r.ts} is before limits.minEventTime ${new Date(this.clockGuard.minEventTime()).toISOString()}`;
      return false;
    }
    if (this.clockGuard.synced() && r.ts > this.clockGuard.maxEventTime(FUTURE_TOLERANCE_MS)) {
      this.counters.futureRefused++;
      refused.count++;
      refused.reason ??= 'timestamp_in_future';
      refused.message ??= `timestamp ${new Date(r.ts).toISOString()} is in the future`;
      return false;
    }
    this.counters.readingsIn++;
    this.metrics.readingsIn.inc({ source: src });
    this.dirty = true;
    // Rules first: the windows carry the reading's score as `anomaly_max` (issue 11).
    const score = this.rules.onReading(r);
    this.windows.ingest(score === undefined ? r : { ...r, score });
    return true;
  }

  private onSummary(s: Summary): void {
    this.counters.summaries++;
    this.metrics.summariesOut.inc({ window: s.window.name });
    this.queueItem({ kind: 'summaries', id: s.id, rev: s.rev, ts: s.window.start, body: s });
    this.rules.onSummary(s);
  }

  private onLate(e: LateEvent): void {
    this.counters.late++;
    this.queueItem({ kind: 'late', id: e.id, rev: 0, ts: e.ts, body: e });
  }

  private onAlert(a: Alert): void {
    this.counters.alerts++;
    this.metrics.alerts.inc({ rule: a.rule, state: a.state });
    this.queueItem({ kind: 'alerts', id: a.id, rev: 0, ts: a.ts, body: a });
  }

  private queueItem(item: OutboxItem): void {
    this.pendingItems.push(item);
    this.pendingEmittedAt.push(this.clock.monotonic());
    // Alerts do not wait for the group window nor for minInterval (SPEC section 2: alerts are never
    // behind summaries): an operator should see an overheating machine first (issue 19).
    if (item.kind === 'alerts') this.scheduleEmitCheckpoint(0, ALERT_MIN_SPACING_MS);
    else this.scheduleEmitCheckpoint(EMIT_GROUP_MS, this.config.checkpoint.minInterval);
  }

  /**
   * Group commit (issue 19): an emitted item is checkpointed `groupMs` later, with whatever else is
   * emitted meanwhile (the burst of windows one watermark step closes), instead of waiting up to
   * `checkpoint.interval` for the timer. At most one such (alerts: ALERT_MIN_SPACING_MS)
   * checkpoint per `checkpoint.minInterval`: that bounds SD-card writes when items are emitted all the
   * time (each checkpoint rewrites the window state). The timer checkpoint counts from the last
   * checkpoint of either kind, so with windows closing every second the number of checkpoints per second
   * stays what it was (bench/sdcard.ts). While checkpoints fail (disk full) only the timer retries.
   */
  private scheduleEmitCheckpoint(groupMs: number, spacingMs: number): void {
    if (!this.running || this.checkpointFailures > 0) return;
    const { minInterval, interval } = this.config.checkpoint;
    // minInterval ≥ interval asks for the timer-only timing of before issue 19: alerts too.
    const spacing = minInterval >= interval ? minInterval : Math.min(spacingMs, minInterval);
    const now = this.clock.monotonic();
    const wait = Math.max(Math.min(groupMs, spacing), this.lastCheckpointMono + spacing - now);
    if (this.emitTimer !== null) {
      if (this.emitDueAt <= now + wait) return; // already due as soon
      this.clock.clearTimeout(this.emitTimer);
    }
    this.emitDueAt = now + wait;
    this.emitTimer = this.clock.setTimeout(() => {
      this.emitTimer = null;
      if (this.running && this.pendingItems.length > 0) this.checkpoint();
    }, wait);
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
    if (
      // A group commit already due for emitted items takes the timer's place (one write, not two).
      (this.emitTimer === null &&
        this.clock.monotonic() - this.lastCheckpointMono >= this.config.checkpoint.interval) ||
      this.pendingItems.length >= 10_000
    ) {
      this.checkpoint();
    }
    this.updateGauges();
    this.exportEngineCounters();
  }

  /**
   * Engine and outbox counters (kept in their snapshots / database) → Prometheus counters, by deltas.
   * `baseline`: at start, the restored values were already exported by the previous process.
   */
  private exportEngineCounters(baseline = false): void {
    const exp = (counter: Counter<string>, labels: Record<string, string>, value: number) =>
      this.deltas.update(counter, labels, value, baseline);
    const ws = this.windows.stats();
    for (const [window, per] of Object.entries(ws.lateByWindow)) {
      exp(this.metrics.lateEvents, { window, action: 'dropped' }, per.dropped);
      exp(this.metrics.lateEvents, { window, action: 'forwarded' }, per.forwarded);
    }
    for (const [reason, n] of Object.entries(ws.droppedByReason))
      exp(this.metrics.readingsDropped, { reason }, n);
    exp(this.metrics.readingsDropped, { reason: 'rule_max_keys' }, this.rules.stats().keysDropped);
    const ob = this.outbox.stats();
    for (const [kind, n] of Object.entries(ob.dropped))
      exp(this.metrics.outboxDropped, { kind, reason: 'full' }, n);
    exp(this.metrics.outboxDropped, { kind: 'any', reason: 'rejected' }, ob.rejected);
    exp(this.metrics.outboxWriteErrors, {}, ob.writeErrors);
  }

  private releaseHeld(): void {
    const now = this.clock.now();
    const mono = this.clock.monotonic();
    const held = this.held;
    this.held = [];
    this.dirty = true;
    for (const h of held) {
      const refused: Refused = { count: 0 };
      this.accept(
        h.source,
        { ...h.reading, ts: Math.round(now - (mono - h.mono)), arrivalTime: true },
        refused,
      );
      this.countRefused(h.source, { payload: Buffer.alloc(0), receivedAt: now }, refused);
    }
    this.log.info(
      { readings: held.length },
      'wall clock synchronised; stamped readings held while it was not',
    );
  }

  /**
   * Writes emitted items and engine state in one transaction, then acknowledges the frames.
   * SD-card friendliness: when nothing changed since the last write (no reading, no item) the write is
   * skipped, and only the state entries whose JSON changed are rewritten.
   */
  checkpoint(): boolean {
    this.lastCheckpointMono = this.clock.monotonic();
    const state = new Map<string, string>();
    if (this.dirty || this.pendingItems.length > 0) {
      const mono = this.clock.monotonic();
      const entries: [string, string][] = [
        ['windows', JSON.stringify(this.windows.snapshot())],
        ['rules', JSON.stringify(this.rules.snapshot())],
        [
          'held',
          JSON.stringify(this.held.map((h) => ({ r: h.reading, age: mono - h.mono, source: h.source }))),
        ],
      ];
      for (const [k, v] of entries)
        if (this.lastSaved.get(k) !== v && !(k === 'held' && v === '[]' && !this.lastSaved.has(k)))
          state.set(k, v);
    }
    if (state.size > 0 || this.pendingItems.length > 0) {
      // With the state, the keys of the frames this checkpoint acknowledges (and the previous one's, whose
      // PUBACKs may also not have reached the broker): after a crash their redeliveries are not counted.
      for (const [src, keys] of this.pendingKeys) {
        state.set(`delivered:${src}`, JSON.stringify([...(this.lastKeys.get(src) ?? []), ...keys]));
      }
    }
    // `state` holds the JSON (compared with lastSaved); the outbox gets the stored form (deflated when large).
    const stored = new Map<string, string>();
    for (const [k, v] of state) stored.set(k, encodeCheckpointValue(v));
    if (this.pendingItems.length === 0 && state.size === 0) {
      // Nothing to persist: frames that changed no state (bad frames, duplicates) can be acknowledged.
      this.counters.checkpointsSkipped++;
      this.metrics.checkpoints.inc({ result: 'skipped' });
      this.committed();
      return true;
    }
    let error: unknown;
    let committed: { from: number; to: number } | undefined;
    try {
      const res = this.outbox.append(this.pendingItems, stored);
      error = res.error;
      if (res.lastSeq !== undefined && res.appended > 0)
        committed = { from: res.lastSeq - res.appended + 1, to: res.lastSeq };
    } catch (err) {
      error = err;
    }
    if (error !== undefined) {
      // Disk full or I/O error: the transaction rolled back. Keep the items, the state and the un-acked
      // frames in memory and retry at the next tick; MQTT brokers redeliver if we die meanwhile.
      // Never crash (issue 4). Back-pressure bounds what accumulates meanwhile.
      this.checkpointFailures++;
      this.counters.checkpointFailures++;
      this.metrics.checkpoints.inc({ result: 'error' });
      if (this.checkpointFailures === 1 || this.checkpointFailures % 60 === 0)
        this.log.error(
          {
            err: error,
            failures: this.checkpointFailures,
            pendingFrames: this.framesSinceCheckpoint,
            pendingItems: this.pendingItems.length,
          },
          'checkpoint failed; retrying',
        );
      if (this.framesSinceCheckpoint >= this.config.limits.maxPendingFrames) this.applyBackpressure();
      return false;
    }
    if (this.checkpointFailures > 0)
      this.log.info({ failures: this.checkpointFailures }, 'checkpoint succeeded again');
    this.checkpointFailures = 0;
    this.counters.checkpoints++;
    this.metrics.checkpoints.inc({ result: 'ok' });
    for (const [k, v] of state) this.lastSaved.set(k, v);
    const committedAt = this.clock.monotonic();
    for (const t of this.pendingEmittedAt)
      this.metrics.deliveryStage.observe({ stage: 'checkpoint' }, (committedAt - t) / 1000);
    this.pendingItems = [];
    this.pendingEmittedAt = [];
    this.committed();
    // Ship right after the checkpoint that holds the items: the uplink pumps now (issue 19).
    this.uplink?.notify(committed);
    return true;
  }

  /** After a successful (or unnecessary) checkpoint: acknowledge frames, reset the at-risk counts. */
  private committed(): void {
    this.dirty = false;
    this.framesSinceCheckpoint = 0;
    for (const k of this.atRisk.keys()) this.atRisk.set(k, 0);
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    this.lastKeys = this.pendingKeys;
    this.pendingKeys = new Map();
    for (const ack of acks) ack();
    if (this.paused) this.releaseBackpressure();
  }

  private applyBackpressure(): void {
    if (this.paused) return;
    this.paused = true;
    this.processing.pause();
    this.metrics.backpressure.inc();
    for (const { source, redeliverable } of this.sources) if (redeliverable) source.pause();
    this.log.warn(
      { pendingFrames: this.framesSinceCheckpoint },
      'back-pressure: MQTT sources paused, serial frames dropped (counted) until the next checkpoint',
    );
    this.checkpoint();
  }

  private releaseBackpressure(): void {
    this.paused = false;
    this.processing.resume();
    for (const { source, redeliverable } of this.sources) if (redeliverable) source.resume();
  }

  private updateGauges(): void {
    const ws = this.windows.stats();
    this.metrics.openWindows.set(ws.openWindows);
    this.metrics.alertsFiring.set(this.rules.firing().length);
    const ob = this.outbox.stats();
    this.metrics.outboxItems.set(ob.items);
    this.metrics.outboxBytes.set(ob.bytes);
    this.metrics.outboxOldestAge.set(
      ob.oldestTs === null ? 0 : Math.max(0, (this.clock.now() - ob.oldestTs) / 1000),
    );
    this.metrics.uplinkConnected.set(this.uplink?.state().connected ? 1 : 0);
    this.metrics.pendingFrames.set(this.framesSinceCheckpoint);
    for (const [source, n] of this.atRisk) this.metrics.readingsAtRisk.set({ source }, n);
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
      sources: Object.fromEntries(
        this.sources.map(({ source }) => {
          const st = source.status();
          // Serial: readings not yet in a checkpoint, lost if the agent dies now (bounded by checkpoint.interval).
          return [
            source.name,
            this.atRisk.has(source.name) ? { ...st, atRisk: this.atRisk.get(source.name) ?? 0 } : st,
          ];
        }),
      ),
      counters: {
        ...this.counters,
        outboxDropped: Object.values(ob.dropped).reduce((a, b) => a + b, 0),
        outboxRejected: ob.rejected,
        outboxWriteErrors: ob.writeErrors,
      },
      update: this.updateReport?.(),
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
      pendingFrames: this.framesSinceCheckpoint,
      pendingAcks: this.pendingAcks.length,
      pendingItems: this.pendingItems.length,
      checkpointFailing: this.checkpointFailures,
      heldUnsynced: this.held.length,
      paused: this.paused,
      memory: { rss: memoryUsage.rss(), heapUsed: memoryUsage().heapUsed },
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
    if (this.emitTimer !== null) this.clock.clearTimeout(this.emitTimer);
    this.emitTimer = null;
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

/** Readings of one frame refused for their timestamp: the first reason and message, and how many. */
interface Refused {
  count: number;
  reason?: 'timestamp_too_old' | 'timestamp_in_future';
  message?: string;
}
