// The runtime's one way of counting (issue 13 item 3).
//
// Before: every event was counted twice on the hot path (a plain `counters` object for the status and a
// prom-client counter for /metrics), and the engine/outbox counters a third way (a delta exporter). Now a
// Tally is the single source of truth: a plain number per label set, bumped where the event happens.
// Everything else is a view derived from it:
//   - /metrics: each prom-client counter of metrics.ts copies its tally on scrape (a `collect` hook),
//   - the status `counters` (SPEC.md section 3): sums or single cells of the same tallies.
// Why plain numbers and not prom-client as the source: the status is built synchronously (uplink status,
// /status) while prom-client reads values asynchronously, and a label-hashing `inc` per reading is the
// dearest way to count. Engine and outbox counters live in their own snapshots (they survive restarts);
// `fold` brings them into the tallies by deltas, which is what the exporter did, now feeding the same tally.

export type Labels = Readonly<Record<string, string>>;

/** A counter cell: hot paths keep one and bump `value` without building a label key each time. */
export interface Cell {
  value: number;
}

export class Tally {
  private readonly cells = new Map<string, { labels: Labels; cell: Cell }>();

  /** The cell of one label set (created at 0). */
  cell(labels: Labels = {}): Cell {
    const key = labelKey(labels);
    let e = this.cells.get(key);
    if (!e) {
      e = { labels: { ...labels }, cell: { value: 0 } };
      this.cells.set(key, e);
    }
    return e.cell;
  }

  inc(labels: Labels = {}, n = 1): void {
    this.cell(labels).value += n;
  }

  get(labels: Labels = {}): number {
    return this.cells.get(labelKey(labels))?.cell.value ?? 0;
  }

  total(): number {
    let t = 0;
    for (const e of this.cells.values()) t += e.cell.value;
    return t;
  }

  *entries(): IterableIterator<[Labels, number]> {
    for (const e of this.cells.values()) yield [e.labels, e.cell.value];
  }
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  if (keys.length === 1) return `${keys[0]}=${labels[keys[0]!]}`;
  return keys
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
}

/** Every count the runtime keeps. Names with a prom-client view in metrics.ts are marked [metric]. */
export class AgentCounters {
  /** [metric] edgeflow_agent_frames_in_total{source} */
  readonly framesIn = new Tally();
  /** [metric] edgeflow_agent_readings_in_total{source} */
  readonly readingsIn = new Tally();
  /** [metric] edgeflow_agent_bad_frames_total{source,reason} */
  readonly badFrames = new Tally();
  /** [metric] edgeflow_agent_readings_dropped_total{reason} */
  readonly readingsDropped = new Tally();
  /** [metric] edgeflow_agent_summaries_out_total{window} */
  readonly summariesOut = new Tally();
  /** [metric] edgeflow_agent_late_events_total{window,action} (folded from the window engine) */
  readonly lateEvents = new Tally();
  /** [metric] edgeflow_agent_alerts_total{rule,state} */
  readonly alerts = new Tally();
  /** [metric] edgeflow_agent_checkpoints_total{result: ok|skipped|error} */
  readonly checkpoints = new Tally();
  /** [metric] edgeflow_agent_outbox_dropped_total{kind,reason} (folded from the outbox) */
  readonly outboxDropped = new Tally();
  /** [metric] edgeflow_agent_outbox_write_errors_total (folded from the outbox) */
  readonly outboxWriteErrors = new Tally();
  /** [metric] edgeflow_agent_clock_jumps_total */
  readonly clockJumps = new Tally();
  /** [metric] edgeflow_agent_state_resets_total{state} */
  readonly stateResets = new Tally();
  /** [metric] edgeflow_agent_backpressure_total */
  readonly backpressure = new Tally();
  /** Late events queued for the uplink (forwarded), this process. */
  readonly lateItems = new Tally();
  /** Readings refused for a timestamp in the future (each reading, whatever the frame's first reason). */
  readonly futureRefused = new Tally();

  private readonly lastFolded = new Map<Tally, Map<string, number>>();

  /**
   * Adds to `tally` what a cumulative external counter (engine stats, outbox stats) gained since the last
   * fold; a decrease means that counter restarted (a reset state, a rebuilt engine) and counts in full.
   * `baseline`: only remember `value` (counted by the process that wrote the restored snapshot).
   */
  fold(tally: Tally, labels: Labels, value: number, baseline = false): void {
    let per = this.lastFolded.get(tally);
    if (!per) {
      per = new Map();
      this.lastFolded.set(tally, per);
    }
    const key = labelKey(labels);
    const prev = per.get(key) ?? 0;
    per.set(key, value);
    if (baseline) return;
    const d = value >= prev ? value - prev : value;
    if (d > 0) tally.inc(labels, d);
  }

  /** The `counters` object of the wire status (SPEC.md section 3), derived from the tallies. */
  wire(): {
    readingsIn: number;
    badFrames: number;
    late: number;
    summaries: number;
    alerts: number;
    checkpoints: number;
    checkpointsSkipped: number;
    checkpointFailures: number;
    stateResets: number;
    futureRefused: number;
    droppedUnsynced: number;
    droppedBackpressure: number;
  } {
    return {
      readingsIn: this.readingsIn.total(),
      badFrames: this.badFrames.total(),
      late: this.lateItems.total(),
      summaries: this.summariesOut.total(),
      alerts: this.alerts.total(),
      checkpoints: this.checkpoints.get({ result: 'ok' }),
      checkpointsSkipped: this.checkpoints.get({ result: 'skipped' }),
      checkpointFailures: this.checkpoints.get({ result: 'error' }),
      stateResets: this.stateResets.total(),
      futureRefused: this.futureRefused.total(),
      droppedUnsynced: this.readingsDropped.get({ reason: 'unsynced_clock_buffer_full' }),
      droppedBackpressure: this.readingsDropped.get({ reason: 'backpressure' }),
    };
  }
}
