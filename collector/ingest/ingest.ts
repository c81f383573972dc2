// Turns one uplink PUBLISH into spool entries (SPEC.md section 3): gunzip, parse, validate the envelope
// (its agent must be the topic's agent), validate items one by one. Anything that cannot be used becomes
// a dead letter carrying the raw payload and the reason, so the agent's batch is still acknowledged and
// nothing is silently lost. Pure: no I/O, no clock, no metrics (the caller counts the returned outcome).

import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { batchEnvelopeSchema, describeIssues, itemSchemas, statusSchema } from '../../shared/model.ts';
import type { UplinkKind } from '../../shared/topics.ts';
import type { SpoolEntry } from '../spool/spool.ts';

export const GZIP_MAGIC = [0x1f, 0x8b] as const;

export interface IngestResult {
  entries: SpoolEntry[];
  /** Counted per reason in `edgeflow_collector_deadletters_total{reason}`. */
  deadLetters: { reason: DeadLetterReason; detail: string }[];
  validItems: number;
  batch: string | null;
}

export type DeadLetterReason =
  | 'gzip'
  | 'json'
  | 'envelope'
  | 'agent_mismatch'
  | 'item'
  | 'status'
  | 'too_large';

export interface IngestOptions {
  /** Upper bound on the gunzipped size (a gzip bomb must not take the collector's memory). */
  maxInflatedBytes: number;
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

export function ingestPublish(
  agent: string,
  kind: UplinkKind,
  topic: string,
  payload: Buffer,
  opts: IngestOptions,
): IngestResult {
  const out: IngestResult = { entries: [], deadLetters: [], validItems: 0, batch: null };
  const fail = (reason: DeadLetterReason, detail: string, raw: Buffer = payload): IngestResult => {
    out.entries.push(deadLetter(agent, topic, raw, reason, detail));
    out.deadLetters.push({ reason, detail });
    return out;
  };

  let text: Buffer = payload;
  if (isGzip(payload, opts.contentType)) {
    try {
      text = gunzipSync(payload, { maxOutputLength: opts.maxInflatedBytes });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return fail(code === 'ERR_BUFFER_TOO_LARGE' ? 'too_large' : 'gzip', (e as Error).message);
    }
  }
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
    out.validItems = 1;
    out.entries.push({
      kind: 'status',
      agent,
      itemId: `status:${st.data.ts}`,
      rev: 0,
      device: null,
      body: Buffer.from(JSON.stringify(st.data)),
      topic,
      value: st.data,
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
  env.data.items.forEach((raw, i) => {
    const res = schema.safeParse(raw);
    if (!res.success) {
      fail(
        'item',
        `batch ${env.data.batch} item ${i}: ${describeIssues(res.error).slice(0, 5).join('; ')}`,
        Buffer.from(JSON.stringify(raw) ?? 'null'),
      );
      return;
    }
    const item = res.data;
    out.validItems++;
    out.entries.push({
      kind,
      agent,
      itemId: item.id,
      rev: 'rev' in item ? item.rev : 0,
      device: item.device,
      body: Buffer.from(JSON.stringify(item)),
      topic,
      value: item, // JSON.parse(body) without parsing it again (the InfluxDB sink's input)
    });
  });
  return out;
}
