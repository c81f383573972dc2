// The wire model of SPEC.md section 3 as types plus runtime validation (zod). The collector validates
// every item it receives against these schemas; the agent builds items that satisfy them.
import { z } from 'zod';
import { fleetReportSchema, labelsSchema } from './fleet.ts';
import { updateReportSchema } from './release.ts';
import { AGENT_ID_RE } from './topics.ts';

/** One decoded sensor reading inside the agent. `ts` is event time in epoch ms. */
export interface Reading {
  device: string;
  metric: string;
  value: number;
  ts: number;
  /** true when the frame carried no timestamp and `ts` is the arrival time. */
  arrivalTime?: boolean;
  /** The reading's unit when the frame says (SenML `u`/`bu`): summaries carry it as tag `unit`. */
  unit?: string;
  /** The highest anomaly score the rules gave this reading, in [0, 1] (set by the runtime; issue 11). */
  score?: number;
}

const name = z.string().min(1).max(256);
const finite = z.number().finite();
const nullableNum = finite.nullable();
export const tagsSchema = z.record(z.string(), z.string()).default({});

export const AGGREGATES = [
  'count',
  'min',
  'max',
  'mean',
  'sum',
  'stddev',
  'first',
  'last',
  'p50',
  'p95',
  // the highest anomaly score a rule gave a reading of the window (issue 11; absent when no
  // statistical rule scored any of them)
  'anomaly_max',
] as const;
export type AggregateName = (typeof AGGREGATES)[number];

export const windowRefSchema = z.object({
  name,
  type: z.enum(['tumbling', 'hopping', 'session', 'count']),
  start: z.number().int(),
  end: z.number().int(),
});

export const summarySchema = z.object({
  id: z.string().min(8).max(128),
  rev: z.number().int().min(0),
  device: name,
  metric: name,
  window: windowRefSchema,
  count: z.number().int().min(0),
  min: nullableNum.optional(),
  max: nullableNum.optional(),
  mean: nullableNum.optional(),
  sum: nullableNum.optional(),
  stddev: nullableNum.optional(),
  first: nullableNum.optional(),
  last: nullableNum.optional(),
  p50: nullableNum.optional(),
  p95: nullableNum.optional(),
  anomaly_max: z.number().min(0).max(1).nullable().optional(),
  late: z.number().int().min(0).default(0),
  tags: tagsSchema,
});
export type Summary = z.infer<typeof summarySchema>;

export const alertSchema = z.object({
  id: z.string().min(8).max(128),
  device: name,
  metric: name,
  rule: name,
  severity: z.enum(['info', 'warning', 'critical']),
  state: z.enum(['firing', 'resolved']),
  ts: z.number().int(),
  value: finite.nullable(),
  /** The detector's anomaly score of the transition's event, in [0, 1] (statistical kinds; issue 11). */
  score: z.number().min(0).max(1).optional(),
  message: z.string().max(4096),
  tags: tagsSchema,
});
export type Alert = z.infer<typeof alertSchema>;

/** A reading later than allowedLateness, shipped raw when `lateEvents: forward` (extension to SPEC 3). */
export const lateEventSchema = z.object({
  id: z.string().min(8).max(128),
  device: name,
  metric: name,
  value: finite,
  ts: z.number().int(),
  window: name,
  tags: tagsSchema,
});
export type LateEvent = z.infer<typeof lateEventSchema>;

export const statusSchema = z.object({
  agent: z.string().regex(AGENT_ID_RE),
  version: z.string(),
  startedAt: z.number().int(),
  ts: z.number().int(),
  clockSynced: z.boolean(),
  outbox: z.object({
    items: z.number().int().min(0),
    bytes: z.number().min(0),
    oldestTs: z.number().int().nullable(),
  }),
  sources: z.record(z.string(), z.unknown()).default({}),
  counters: z.record(z.string(), z.number()).default({}),
  /** Fleet control (issue 15, shared/fleet.ts): labels from the agent's local config, and its report. */
  labels: labelsSchema.optional(),
  fleet: fleetReportSchema.optional(),
  /** Over-the-air updates (issue 16, shared/release.ts): running/wanted version and the update state. */
  update: updateReportSchema.optional(),
});
export type Status = z.infer<typeof statusSchema>;

/**
 * A batch envelope. Items are validated one by one (not here) so one bad item does not reject the rest
 * of its batch: the collector dead-letters the bad ones and keeps the others.
 */
export const batchEnvelopeSchema = z.object({
  v: z.literal(1),
  agent: z.string().regex(AGENT_ID_RE),
  batch: z.string().min(1).max(128),
  items: z.array(z.unknown()).max(100_000),
});
export type BatchEnvelope = z.infer<typeof batchEnvelopeSchema>;

export interface Batch<T> {
  v: 1;
  agent: string;
  batch: string;
  items: T[];
}

export type ItemKind = 'summaries' | 'alerts' | 'late';
export const itemSchemas = { summaries: summarySchema, alerts: alertSchema, late: lateEventSchema } as const;

/** Formats a zod error as one `path: message` string per problem. */
export function describeIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.');
    return `${path || '(root)'}: ${i.message}`;
  });
}
