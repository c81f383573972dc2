// The agent's Prometheus metrics (STYLE.md: telemetry is part of the contract). One instance per agent,
// on a registry passed in, so two agents can live in one process (tests do).
//
// The counters here are views: each copies its tally (counters.ts, the one way of counting) when
// scraped. Nothing calls `inc` on them. Gauges and the histogram are set/observed directly (a level or a
// distribution is not a count).
import { Counter, Gauge, Histogram, type LabelValues, Registry } from 'prom-client';
import { STAGE_LATENCY_BUCKETS } from '../../shared/stage-latency.ts';
import type { AgentCounters, Tally } from './counters.ts';

/** `collect` hook of a counter that mirrors `tally` (prom-client calls it before every read). */
function viewOf<T extends string>(tally: Tally): (this: Counter<T>) => void {
  return function (this: Counter<T>) {
    this.reset();
    for (const [labels, v] of tally.entries()) this.inc(labels as LabelValues<T>, v);
  };
}

export class AgentMetrics {
  readonly registry: Registry;
  readonly framesIn: Counter<'source'>;
  readonly readingsIn: Counter<'source'>;
  readonly badFrames: Counter<'source' | 'reason'>;
  readonly readingsDropped: Counter<'reason'>;
  readonly summariesOut: Counter<'window'>;
  readonly lateEvents: Counter<'window' | 'action'>;
  readonly alerts: Counter<'rule' | 'state'>;
  readonly checkpoints: Counter<'result'>;
  readonly outboxDropped: Counter<'kind' | 'reason'>;
  readonly clockJumps: Counter;
  readonly openWindows: Gauge;
  readonly alertsFiring: Gauge;
  readonly outboxItems: Gauge;
  readonly outboxBytes: Gauge;
  readonly outboxOldestAge: Gauge;
  readonly uplinkConnected: Gauge;
  readonly sourceUp: Gauge<'source' | 'type'>;
  readonly pendingFrames: Gauge;
  readonly clockSynced: Gauge;
  readonly stateResets: Counter<'state'>;
  readonly outboxWriteErrors: Counter;
  readonly backpressure: Counter;
  readonly readingsAtRisk: Gauge<'source'>;
  readonly deliveryStage: Histogram<'stage'>;

  constructor(counters: AgentCounters, registry = new Registry()) {
    this.registry = registry;
    const r = [registry];
    this.framesIn = new Counter({
      collect: viewOf(counters.framesIn),
      name: 'edgeflow_agent_frames_in_total',
      help: 'Frames received per source',
      labelNames: ['source'],
      registers: r,
    });
    this.readingsIn = new Counter({
      collect: viewOf(counters.readingsIn),
      name: 'edgeflow_agent_readings_in_total',
      help: 'Readings decoded per source',
      labelNames: ['source'],
      registers: r,
    });
    this.badFrames = new Counter({
      collect: viewOf(counters.badFrames),
      name: 'edgeflow_agent_bad_frames_total',
      help: 'Frames that did not decode, per source and reason',
      labelNames: ['source', 'reason'],
      registers: r,
    });
    this.readingsDropped = new Counter({
      collect: viewOf(counters.readingsDropped),
      name: 'edgeflow_agent_readings_dropped_total',
      help: 'Readings dropped by policy (state bounds, back-pressure, unsynced clock)',
      labelNames: ['reason'],
      registers: r,
    });
    this.summariesOut = new Counter({
      collect: viewOf(counters.summariesOut),
      name: 'edgeflow_agent_summaries_out_total',
      help: 'Window summaries emitted (revisions included)',
      labelNames: ['window'],
      registers: r,
    });
    this.lateEvents = new Counter({
      collect: viewOf(counters.lateEvents),
      name: 'edgeflow_agent_late_events_total',
      help: 'Readings later than allowedLateness (dropped or forwarded raw)',
      labelNames: ['window', 'action'],
      registers: r,
    });
    this.alerts = new Counter({
      collect: viewOf(counters.alerts),
      name: 'edgeflow_agent_alerts_total',
      help: 'Alert transitions emitted',
      labelNames: ['rule', 'state'],
      registers: r,
    });
    this.checkpoints = new Counter({
      collect: viewOf(counters.checkpoints),
      name: 'edgeflow_agent_checkpoints_total',
      help: 'Checkpoints: ok (written), skipped (nothing changed), error (write failed, retried)',
      labelNames: ['result'],
      registers: r,
    });
    this.outboxDropped = new Counter({
      collect: viewOf(counters.outboxDropped),
      name: 'edgeflow_agent_outbox_dropped_total',
      help: 'Items dropped or refused by the outbox size policy',
      labelNames: ['kind', 'reason'],
      registers: r,
    });
    this.clockJumps = new Counter({
      collect: viewOf(counters.clockJumps),
      name: 'edgeflow_agent_clock_jumps_total',
      help: 'Wall-clock steps detected against the monotonic clock',
      registers: r,
    });
    this.openWindows = new Gauge({
      name: 'edgeflow_agent_open_windows',
      help: 'Windows currently open',
      registers: r,
    });
    this.alertsFiring = new Gauge({
      name: 'edgeflow_agent_alerts_firing',
      help: 'Alerts currently firing',
      registers: r,
    });
    this.outboxItems = new Gauge({
      name: 'edgeflow_agent_outbox_items',
      help: 'Items waiting in the outbox',
      registers: r,
    });
    this.outboxBytes = new Gauge({
      name: 'edgeflow_agent_outbox_bytes',
      help: 'Bytes waiting in the outbox',
      registers: r,
    });
    this.outboxOldestAge = new Gauge({
      name: 'edgeflow_agent_outbox_oldest_age_seconds',
      help: 'Age of the oldest outbox item (event time)',
      registers: r,
    });
    this.uplinkConnected = new Gauge({
      name: 'edgeflow_agent_uplink_connected',
      help: '1 when the uplink is connected',
      registers: r,
    });
    this.sourceUp = new Gauge({
      name: 'edgeflow_agent_source_up',
      help: '1 when a source is connected/open',
      labelNames: ['source', 'type'],
      registers: r,
    });
    this.pendingFrames = new Gauge({
      name: 'edgeflow_agent_pending_frames',
      help: 'Frames processed but not yet in a checkpoint',
      registers: r,
    });
    this.stateResets = new Counter({
      collect: viewOf(counters.stateResets),
      name: 'edgeflow_agent_state_resets_total',
      help: 'Checkpointed window/rule state found unreadable at start (STORE_CORRUPT) and started fresh',
      labelNames: ['state'],
      registers: r,
    });
    this.outboxWriteErrors = new Counter({
      collect: viewOf(counters.outboxWriteErrors),
      name: 'edgeflow_agent_outbox_write_errors_total',
      help: 'Outbox writes that failed (disk full, I/O error); retried',
      registers: r,
    });
    this.backpressure = new Counter({
      collect: viewOf(counters.backpressure),
      name: 'edgeflow_agent_backpressure_total',
      help: 'Times sources were paused because too many frames waited for a checkpoint',
      registers: r,
    });
    this.readingsAtRisk = new Gauge({
      name: 'edgeflow_agent_readings_at_risk',
      help: 'Serial readings accepted since the last checkpoint (lost if the agent dies now; serial cannot redeliver)',
      labelNames: ['source'],
      registers: r,
    });
    this.clockSynced = new Gauge({
      name: 'edgeflow_agent_clock_synced',
      help: '1 when the wall clock looks synchronised',
      registers: r,
    });
    // Issue 19: where an item's time goes before it reaches the collector (the collector's
    // edgeflow_collector_delivery_stage_seconds takes over from there). Monotonic durations.
    this.deliveryStage = new Histogram({
      name: 'edgeflow_agent_delivery_stage_seconds',
      help:
        'Delivery latency per stage: checkpoint = item emitted (window closed, alert raised) → committed to the outbox (per item); ' +
        'uplink_queue = committed → published (per batch, its oldest item); uplink_ack = published → PUBACK from the collector (per batch)',
      labelNames: ['stage'],
      buckets: STAGE_LATENCY_BUCKETS,
      registers: r,
    });
  }
}
