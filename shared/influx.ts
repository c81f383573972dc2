// Mapping of summaries, alerts and status to InfluxDB points (SPEC.md section 4). Escaping is the
// Influx client's `Point` (never string concatenation). Time precision is milliseconds throughout.
import { Point } from '@influxdata/influxdb-client';
import { AGGREGATES, type AggregateName, type Alert, type Status, type Summary } from './model.ts';

export const PRECISION = 'ms' as const;

// Every aggregate but `count` (an int field); derived, so a new aggregate (anomaly_max, issue 11) is a field.
const SUMMARY_FLOATS = AGGREGATES.filter((a): a is Exclude<AggregateName, 'count'> => a !== 'count');

/** A summary's time is its window start; its tags make re-sends and rev+1 overwrite the same point. */
export function summaryPoint(agent: string, s: Summary): Point {
  const p = new Point('edgeflow_summary')
    .tag('agent', agent)
    .tag('device', s.device)
    .tag('metric', s.metric)
    .tag('window', s.window.name)
    .intField('count', s.count)
    .intField('late', s.late ?? 0)
    .intField('rev', s.rev)
    .timestamp(s.window.start);
  for (const f of SUMMARY_FLOATS) {
    const v = s[f];
    if (typeof v === 'number' && Number.isFinite(v)) p.floatField(f, v);
  }
  return p;
}

export function alertPoint(agent: string, a: Alert): Point {
  const p = new Point('edgeflow_alert')
    .tag('agent', agent)
    .tag('device', a.device)
    .tag('metric', a.metric)
    .tag('rule', a.rule)
    .tag('severity', a.severity)
    .stringField('state', a.state)
    .stringField('message', a.message)
    .timestamp(a.ts);
  if (a.value !== null && Number.isFinite(a.value)) p.floatField('value', a.value);
  if (a.score !== undefined && Number.isFinite(a.score)) p.floatField('score', a.score);
  return p;
}

export function statusPoint(s: Status): Point {
  const p = new Point('edgeflow_agent')
    .tag('agent', s.agent)
    .intField('outbox_items', s.outbox.items)
    .intField('outbox_bytes', Math.round(s.outbox.bytes))
    .booleanField('clock_synced', s.clockSynced)
    .intField('uptime_s', Math.max(0, Math.round((s.ts - s.startedAt) / 1000)))
    .stringField('version', s.version)
    .timestamp(s.ts);
  if (s.outbox.oldestTs !== null) p.intField('outbox_oldest_age_ms', Math.max(0, s.ts - s.outbox.oldestTs));
  // Fleet control (issue 15): always written, so the "Rollout progress" panel sums to the agent count; an
  // agent without a fleet report runs its local file only (version 0, state "local").
  const f = s.fleet;
  const state = f?.state ?? 'local';
  p.intField('fleet_version', f?.version ?? 0)
    .stringField('fleet_state', state)
    .intField('fleet_applied', state === 'applied' ? 1 : 0)
    .intField('fleet_pending', state === 'pending' ? 1 : 0)
    .intField('fleet_failed', state === 'rejected' || state === 'rolled_back' ? 1 : 0);
  if (f) {
    p.stringField('fleet_hash', f.hash);
    if (f.rollout) p.stringField('fleet_rollout', f.rollout);
    if (f.reason) p.stringField('fleet_reason', f.reason);
  }
  // Issue 16: over-the-air update state (shared/release.ts updateReportSchema).
  if (s.update) {
    p.stringField('update_state', s.update.state).stringField('update_wanted', s.update.wanted ?? '');
    if (s.update.reason) p.stringField('update_reason', s.update.reason);
  }
  for (const [k, v] of Object.entries(s.counters)) {
    if (Number.isFinite(v)) p.floatField(k.replace(/[^a-zA-Z0-9_]/g, '_'), v);
  }
  return p;
}

/** Line protocol for points whose timestamps are epoch milliseconds. */
export function toLineProtocol(points: readonly Point[]): string {
  const lines: string[] = [];
  for (const p of points) {
    const line = p.toLineProtocol();
    if (line) lines.push(line);
  }
  return lines.join('\n');
}
