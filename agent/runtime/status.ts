// What the runtime tells the outside: the wire status (SPEC.md section 3, published retained on the
// uplink), the operator's /status, the health view other parts of the agent act on (fleet, updates),
// and the Prometheus gauges. Counts come from the tallies (counters.ts); engine and outbox counters are
// folded into them here, once per tick.
import { memoryUsage } from 'node:process';
import type { Clock } from '../../shared/clock.ts';
import type { Status } from '../../shared/model.ts';
import type { UpdateReport } from '../../shared/release.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { Backpressure } from './backpressure.ts';
import type { Checkpointer } from './checkpoint.ts';
import type { ClockGuard } from './clock-guard.ts';
import type { ClockHold } from './clock-hold.ts';
import type { AgentCounters } from './counters.ts';
import type { Engines } from './engines.ts';
import type { AgentMetrics } from './metrics.ts';
import type { SourceSet } from './sources.ts';
import type { UplinkSlot } from './uplink-slot.ts';

/** The parts of a running agent the views read (agent.ts passes getters: reload replaces some). */
export interface RuntimeParts {
  readonly agentId: string;
  readonly version: string;
  readonly startedAt: number;
  readonly clock: Clock;
  readonly clockGuard: ClockGuard;
  readonly counters: AgentCounters;
  readonly metrics: AgentMetrics;
  readonly engines: Engines;
  readonly outbox: Outbox;
  readonly sources: SourceSet;
  readonly checkpointer: Checkpointer;
  readonly hold: ClockHold;
  readonly backpressure: Backpressure;
  readonly uplink: UplinkSlot;
  readonly running: boolean;
  /** Fields other parts of the agent add to the status (fleet control: `labels`, `fleet`; issue 15). */
  statusFields: (() => StatusFields) | null;
  /** Issue 16: the updater's report, `update` in the status (agent/update/updater.ts). */
  updateReport: (() => UpdateReport) | undefined;
}

/** The optional status fields of SPEC extensions that parts outside the runtime fill in. */
export type StatusFields = Partial<Pick<Status, 'labels' | 'fleet'>>;

/**
 * The health view (issue 13; used by agent/fleet and agent/update to decide whether a new config or
 * release is working). Plain data, cheap to build: no engine walk, no database query.
 */
export interface AgentHealth {
  /** Started and not stopping. */
  running: boolean;
  /** Sources whose state is 'up' (connected / port open), and how many there are. */
  sourcesOpen: number;
  sourcesTotal: number;
  /** Per source: its name, type, state, whether it is open, and its last error (why it is not). */
  sources: { name: string; type: string; state: string; open: boolean; lastError?: string }[];
  /** null when no uplink is configured. */
  uplinkConnected: boolean | null;
  /** The uplink's last connection or publish error; null when none or no uplink. */
  uplinkLastError: string | null;
  /** Wall time (epoch ms) of the last successful checkpoint (written, or nothing to write); null before the first. */
  lastCheckpointAt: number | null;
  /** Checkpoints failed in a row (0 = healthy disk). */
  checkpointFailing: number;
  clockSynced: boolean;
}

export function health(p: RuntimeParts): AgentHealth {
  const sources = p.sources.entries.map(({ source }) => {
    const st = source.status();
    return {
      name: st.name,
      type: st.type,
      state: st.state,
      open: st.state === 'up',
      ...(st.lastError !== undefined ? { lastError: st.lastError } : {}),
    };
  });
  const up = p.uplink.state();
  const cp = p.checkpointer.view();
  return {
    running: p.running,
    sourcesOpen: sources.filter((s) => s.open).length,
    sourcesTotal: sources.length,
    sources,
    uplinkConnected: up?.connected ?? null,
    uplinkLastError: up?.lastError ?? null,
    lastCheckpointAt: cp.lastCommitAt,
    checkpointFailing: cp.failing,
    clockSynced: p.clockGuard.synced(),
  };
}

export function notStartedHealth(clockGuard: ClockGuard): AgentHealth {
  return {
    running: false,
    sourcesOpen: 0,
    sourcesTotal: 0,
    sources: [],
    uplinkConnected: null,
    uplinkLastError: null,
    lastCheckpointAt: null,
    checkpointFailing: 0,
    clockSynced: clockGuard.synced(),
  };
}

/** The status object of SPEC.md section 3 (published retained on the uplink). */
export function wireStatus(p: RuntimeParts): Status {
  const ob = p.outbox.stats();
  return {
    agent: p.agentId,
    version: p.version,
    startedAt: p.startedAt,
    ts: p.clock.now(),
    clockSynced: p.clockGuard.synced(),
    outbox: { items: ob.items, bytes: ob.bytes, oldestTs: ob.oldestTs },
    sources: Object.fromEntries(
      p.sources.entries.map(({ source }) => {
        const st = source.status();
        // Serial: readings not yet in a checkpoint, lost if the agent dies now (bounded by checkpoint.interval).
        const atRisk = p.checkpointer.atRiskOf(source.name);
        return [source.name, atRisk !== undefined ? { ...st, atRisk } : st];
      }),
    ),
    counters: {
      ...p.counters.wire(),
      outboxDropped: Object.values(ob.dropped).reduce((a, b) => a + b, 0),
      outboxRejected: ob.rejected,
      outboxWriteErrors: ob.writeErrors,
    },
    ...p.statusFields?.(),
    ...(p.updateReport ? { update: p.updateReport() } : {}),
  };
}

/** `/status`: the wire status plus what an operator asks about (link, windows, firing alerts). */
export function statusDetail(p: RuntimeParts): Record<string, unknown> {
  const cp = p.checkpointer.view();
  return {
    ...wireStatus(p),
    uplink: p.uplink.state(),
    windows: p.engines.windows.stats(),
    rules: p.engines.rules.stats(),
    firing: p.engines.rules.firing(),
    outboxDetail: p.outbox.stats(),
    pendingFrames: cp.pendingFrames,
    pendingAcks: cp.pendingAcks,
    pendingItems: cp.pendingItems,
    checkpointFailing: cp.failing,
    heldUnsynced: p.hold.size,
    paused: p.backpressure.paused,
    memory: { rss: memoryUsage.rss(), heapUsed: memoryUsage().heapUsed },
  };
}

/**
 * Engine and outbox counters (kept in their snapshots / database, so they survive restarts) → the
 * tallies, by deltas. `baseline`: at start, the restored values were counted by the previous process.
 */
export function foldEngineCounters(p: RuntimeParts, baseline = false): void {
  const c = p.counters;
  const ws = p.engines.windows.stats();
  for (const [window, per] of Object.entries(ws.lateByWindow)) {
    c.fold(c.lateEvents, { window, action: 'dropped' }, per.dropped, baseline);
    c.fold(c.lateEvents, { window, action: 'forwarded' }, per.forwarded, baseline);
  }
  for (const [reason, n] of Object.entries(ws.droppedByReason))
    c.fold(c.readingsDropped, { reason }, n, baseline);
  c.fold(c.readingsDropped, { reason: 'rule_max_keys' }, p.engines.rules.stats().keysDropped, baseline);
  const ob = p.outbox.stats();
  for (const [kind, n] of Object.entries(ob.dropped))
    c.fold(c.outboxDropped, { kind, reason: 'full' }, n, baseline);
  c.fold(c.outboxDropped, { kind: 'any', reason: 'rejected' }, ob.rejected, baseline);
  c.fold(c.outboxWriteErrors, {}, ob.writeErrors, baseline);
}

export function updateGauges(p: RuntimeParts): void {
  const m = p.metrics;
  m.openWindows.set(p.engines.windows.stats().openWindows);
  m.alertsFiring.set(p.engines.rules.firing().length);
  const ob = p.outbox.stats();
  m.outboxItems.set(ob.items);
  m.outboxBytes.set(ob.bytes);
  m.outboxOldestAge.set(ob.oldestTs === null ? 0 : Math.max(0, (p.clock.now() - ob.oldestTs) / 1000));
  m.uplinkConnected.set(p.uplink.state()?.connected ? 1 : 0);
  m.pendingFrames.set(p.checkpointer.pendingFrames);
  for (const [source, n] of p.checkpointer.atRiskEntries()) m.readingsAtRisk.set({ source }, n);
  m.clockSynced.set(p.clockGuard.synced() ? 1 : 0);
  for (const { source } of p.sources.entries) {
    const st = source.status();
    m.sourceUp.set({ source: st.name, type: st.type }, st.state === 'up' ? 1 : 0);
  }
}
