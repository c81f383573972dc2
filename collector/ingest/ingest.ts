// Turns one uplink PUBLISH into spool entries (SPEC.md section 3): gunzip, parse, validate the envelope
// (its agent must be the topic's agent), validate items one by one. Anything that cannot be used becomes
// a dead letter carrying the raw payload and the reason, so the agent's batch is still acknowledged and
// nothing is silently lost. Pure: no I/O, no clock, no metrics (the caller counts the returned outcome).
//
// Bounded work per publish (issue 12, item 9; measured figures in BENCHMARKS.md "Hostile agent"): the
// gunzipped size (mqtt.maxBatchBytes), then the text's shape before JSON.parse (json-shape.ts: depth,
// items, values), then at most MAX_INVALID_ITEMS per-item error reports. gunzip runs on libuv's pool
// and item validation yields to the event loop every SLICE_MS, so one big batch cannot stall /healthz
// or other agents' PUBACKs; only JSON.parse of at most maxBatchBytes runs in one piece.

import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { batchEnvelopeSchema, describeIssues, itemSchemas, statusSchema } from '../../shared/model.ts';
import type { UplinkKind } from '../../shared/topics.ts';
import type { SpoolEntry } from '../spool/spool.ts';
import { type JsonShapeVerdict, scanJsonShape } from './json-shape.ts';

export const GZIP_MAGIC = [0x1f, 0x8b] as const;

const gunzipAsync = promisify(gunzip);
/** Longest stretch of item validation before yielding to the event loop. */
const SLICE_MS = 10;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface IngestResult {
  entries: SpoolEntry[];
  /** Counted per reason in `edgeflow_collector_deadletters_total{reason}`. */
  deadLetters: { reason: DeadLetterReason; detail: string }[];
  validItems: number;
  batch: string | null;
  /** Status counters dropped by the caps above (`edgeflow_collector_status_counters_dropped_total`). */
  countersDropped: number;
}

export type DeadLetterReason =
  | 'gzip'
  | 'json'
  | 'envelope'
  | 'agent_mismatch'
  | 'item'
  | 'status'
  | 'too_large'
  | JsonShapeReason
  | 'too_many_invalid'
  | 'unprocessable';

type JsonShapeReason = Exclude<JsonShapeVerdict, { ok: true }>['reason'];

/**
 * Nesting depth limit (issue 12, item 11): a summary is 4 deep in its batch (envelope, items, item,
 * window/tags), a status' sources a few more. Deeper text is dead-lettered before JSON.parse.
 */
export const MAX_JSON_DEPTH = 32;
/** Values (commas + containers) allowed per item: a summary has ~25, its tags a few more. */
export const VALUES_PER_ITEM = 100;
/**
 * Invalid items dead-lettered one by one, per batch; past this the whole payload becomes one dead letter
 * (issue 12, item 9: 100k invalid items took 26 s of zod errors and 100k dead-letter rows).
 */
export const MAX_INVALID_ITEMS = 100;
/** Status `counters` kept per status (fields of one InfluxDB point) and the longest name kept. */
export const STATUS_MAX_COUNTERS = 256;
export const STATUS_MAX_COUNTER_NAME = 128;
/** Values in one status: its counters and sources (40k counters took 650 ms to validate). */
export const STATUS_MAX_VALUES = 8192;

export interface IngestOptions {
  /** Upper bound on the gunzipped size (a gzip bomb must not take the collector's memory). */
  maxInflatedBytes: number;
  /** Items per batch (`mqtt.maxBatchItems`), checked on the text before JSON.parse. */
  maxItems: number;
  /** MQTT 5 content type if the transport carried one (aedes v1 speaks 3.1.1 only: usually undefined). */
  contentType?: string | undefined;
}

function isGzip(payload: Buffer, contentType?: string): boolean {
  return (
    contentType === 'application/json+gzip' ||
    (payload.length >= 2 && payload[0] === GZIP_MAGIC[0] && payload[1] === GZIP_MAGIC[1])
  );
}

function deadLetter(
  agent: string,
  topic: string,
  raw: Buffer,
  reason: DeadLetterReason,
  detail: string,
): SpoolEntry {
  // A re-sent bad batch is the same dead letter: de-duplicate on the payload's hash.
  const h = createHash('sha256').update(topic).update('\0').update(raw).digest('hex').slice(0, 32);
  return {
    kind: 'deadletter',
    agent,
    itemId: null,
    rev: 0,
    device: null,
    body: raw,
    error: `${reason}: ${detail}`.slice(0, 2000),
    dedupKey: `dl:${h}`,
    topic,
  };
}

export async function ingestPublish(
  agent: string,
  kind: UplinkKind,
  topic: string,
  payload: Buffer,
  opts: IngestOptions,
): Promise<IngestResult> {
  try {
    return await ingest(agent, kind, topic, payload, opts);
  } catch (e) {
    // Whatever this payload does to the code above (a bug, a RangeError), it is the payload's problem,
    // not the spool's: dead-letter it rather than fail the commit and have the agent re-send forever.
    const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return wholePayloadDeadLetter(agent, topic, payload, 'unprocessable', detail);
  }
}

function wholePayloadDeadLetter(
  agent: string,
  topic: string,
  payload: Buffer,
  reason: DeadLetterReason,
  detail: string,
): IngestResult {
  return {
    entries: [deadLetter(agent, topic, payload, reason, detail)],
    deadLetters: [{ reason, detail }],
    validItems: 0,
    batch: null,
    countersDropped: 0,
  };
}

async function ingest(
  agent: string,
  kind: UplinkKind,
  topic: string,
  payload: Buffer,
  opts: IngestOptions,
): Promise<IngestResult> {
  const out: IngestResult = { entries: [], deadLetters: [], validItems: 0, batch: null, countersDropped: 0 };
  const fail = (reason: DeadLetterReason, detail: string, raw: Buffer = payload): IngestResult => {
    out.entries.push(deadLetter(agent, topic, raw, reason, detail));
    out.deadLetters.push({ reason, detail });
    return out;
  };

  let text: Buffer = payload;
  if (isGzip(payload, opts.contentType)) {
    try {
      // 1 MB steps instead of zlib's 16 KB: each step is a thread-pool round trip that waits for a turn
      // of a busy event loop (16 KB steps took a 16 MB inflate 2-5 s under load; measured, issue 12).
      text = await gunzipAsync(payload, { maxOutputLength: opts.maxInflatedBytes, chunkSize: 1 << 20 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return fail(code === 'ERR_BUFFER_TOO_LARGE' ? 'too_large' : 'gzip', (e as Error).message);
    }
  } else if (payload.length > opts.maxInflatedBytes) {
    return fail('too_large', `${payload.length} bytes, more than ${opts.maxInflatedBytes}`);
  }
  const shape = scanJsonShape(text, {
    maxDepth: MAX_JSON_DEPTH,
    maxItems: opts.maxItems,
    maxValues: kind === 'status' ? STATUS_MAX_VALUES : (opts.maxItems + 10) * VALUES_PER_ITEM,
  });
  if (!shape.ok) return fail(shape.reason, shape.detail);
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch (e) {
    return fail('json', (e as Error).message);
  }

  if (kind === 'status') {
    const st = statusSchema.safeParse(json);
    if (!st.success) return fail('status', describeIssues(st.error).slice(0, 5).join('; '));
    if (st.data.agent !== agent)
      return fail('agent_mismatch', `status.agent "${st.data.agent}" is not the topic's agent "${agent}"`);
    const { counters, dropped } = boundCounters(st.data.counters);
    out.countersDropped = dropped;
    const value = { ...st.data, counters };
    out.validItems = 1;
    out.entries.push({
      kind: 'status',
      agent,
      itemId: `status:${st.data.ts}`,
      rev: 0,
      dedupTime: st.data.ts,
      device: null,
      body: Buffer.from(JSON.stringify(value)),
      topic,
      value,
    });
    return out;
  }

  const env = batchEnvelopeSchema.safeParse(json);
  if (!env.success) return fail('envelope', describeIssues(env.error).slice(0, 5).join('; '));
  if (env.data.agent !== agent) {
    return fail('agent_mismatch', `batch.agent "${env.data.agent}" is not the topic's agent "${agent}"`);
  }
  out.batch = env.data.batch;
  const schema = itemSchemas[kind];
  let invalid = 0;
  let sliceStart = performance.now();
  for (let i = 0; i < env.data.items.length; i++) {
    if ((i & 63) === 63 && performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
    const raw = env.data.items[i];
    const res = schema.safeParse(raw);
    if (!res.success) {
      if (++invalid > MAX_INVALID_ITEMS) {
        // One dead letter with the whole payload replaces the per-item ones: nothing is lost, and a
        // hostile batch costs at most MAX_INVALID_ITEMS error reports.
        return wholePayloadDeadLetter(
          agent,
          topic,
          payload,
          'too_many_invalid',
          `batch ${env.data.batch}: more than ${MAX_INVALID_ITEMS} invalid items`,
        );
      }
      fail(
        'item',
        `batch ${env.data.batch} item ${i}: ${describeIssues(res.error).slice(0, 5).join('; ')}`,
        Buffer.from(JSON.stringify(raw) ?? 'null'),
      );
      continue;
    }
    const item = res.data;
    out.validItems++;
    out.entries.push({
      kind,
      agent,
      itemId: item.id,
      rev: 'rev' in item ? item.rev : 0,
      device: item.device,
      // The spool's dedup index is ordered by it (spool.ts, dedup_v2); the id is derived from it.
      dedupTime: 'ts' in item ? item.ts : item.window.start,
      body: Buffer.from(JSON.stringify(item)),
      topic,
      value: item, // JSON.parse(body) without parsing it again (the InfluxDB sink's input)
    });
  }
  return out;
}

/**
 * Status counters become fields of one InfluxDB point (shared/influx.ts statusPoint): 40k counters made a
 * 40k-field point (issue 12, item 12). Keeps the first STATUS_MAX_COUNTERS with names up to
 * STATUS_MAX_COUNTER_NAME characters; the rest are counted as dropped.
 */
export function boundCounters(counters: Record<string, number>): {
  counters: Record<string, number>;
  dropped: number;
} {
  const kept: Record<string, number> = Object.create(null); // a `__proto__` counter stays a counter
  let n = 0;
  let dropped = 0;
  for (const [k, v] of Object.entries(counters)) {
    if (n >= STATUS_MAX_COUNTERS || k.length > STATUS_MAX_COUNTER_NAME) dropped++;
    else {
      kept[k] = v;
      n++;
    }
  }
  return { counters: dropped === 0 ? counters : kept, dropped };
}
