// The sink contract (STYLE.md: kafkajs and the Influx client stay behind our own interface).
//
// Who guarantees what: the SinkRunner calls `write` for one sink strictly sequentially (never two
// writes in flight), in spool order, and retries what comes back `retriable`. A sink only does I/O: it
// must not retry internally for longer than one request's timeout, and must report per item (by index
// into the array it was given) what failed. Items a sink does not store (e.g. dead letters for
// InfluxDB) count as ok.
import type { z } from 'zod';
import type { Logger } from '../../shared/log.ts';
import type { Descriptor } from '../../shared/registry.ts';
import type { SpoolItem } from '../spool/spool.ts';

export interface SinkFailure {
  index: number;
  error: string;
  /** A stable short code (metric label): e.g. 'unavailable', 'timeout', 'bad_point', 'too_large'. */
  code: string;
  retriable: boolean;
  /** Server asked us to wait this long (HTTP Retry-After), if it said so. */
  retryAfterMs?: number;
}

export interface WriteResult {
  ok: number;
  failed: SinkFailure[];
}

export interface Sink {
  readonly name: string;
  /** Items per write the sink works best with; the runner's default otherwise. */
  readonly batchSize?: number;
  /** Connects / verifies the destination (topics exist, database reachable). Throws EdgeflowError. */
  start(): Promise<void>;
  write(items: readonly SpoolItem[]): Promise<WriteResult>;
  healthcheck(): Promise<boolean>;
  close(): Promise<void>;
}

/** The item as consumers see it: its JSON with `agent` added (SPEC.md section 4). */
export function itemRecord(item: SpoolItem): Record<string, unknown> {
  const obj = JSON.parse(item.body.toString('utf8')) as Record<string, unknown>;
  return item.kind === 'status' ? obj : { ...obj, agent: item.agent };
}

const AGENT_KEY = Buffer.from('"agent"');

/**
 * `JSON.stringify(itemRecord(item))` without parsing the body. A spooled body is JSON.stringify output of
 * a validated item (ingest.ts), so writing `,"agent":…` before its closing brace gives the same bytes as
 * parse → `{ ...obj, agent }` → stringify: the body's keys in their order, then `agent`. Anything that
 * might not give the same bytes (a status, a body that is not an object, one that mentions "agent"
 * anywhere) takes the parse path. Parse + spread + stringify was ~7 % of the collector's CPU in
 * bench/collector.ts (BENCHMARKS.md); sink.test.ts checks byte equality, also on random objects.
 */
export function itemRecordJson(item: SpoolItem): string {
  return itemRecordBytes(item).toString('utf8');
}

/** `,"agent":"<id>"}` per agent: a fleet has few agents (bounded anyway). */
const agentSuffixes = new Map<string, Buffer>();

function agentSuffix(agent: string): Buffer {
  let s = agentSuffixes.get(agent);
  if (!s) {
    if (agentSuffixes.size >= 10_000) agentSuffixes.clear();
    s = Buffer.from(`"agent":${JSON.stringify(agent)}}`);
    agentSuffixes.set(agent, s);
  }
  return s;
}

/**
 * itemRecordJson's bytes, as the Kafka sink sends them: the body copied with the agent's suffix, no
 * UTF-8 decode of the body and encode of the result (issue 18: ~1 µs of the Kafka thread per record).
 */
export function itemRecordBytes(item: SpoolItem): Buffer {
  const b = item.body;
  if (
    item.kind === 'status' ||
    b.length < 2 ||
    b[0] !== 0x7b || // {
    b[b.length - 1] !== 0x7d || // }
    b.includes(AGENT_KEY)
  ) {
    return Buffer.from(JSON.stringify(itemRecord(item)));
  }
  const suffix = agentSuffix(item.agent);
  const head = b.length - 1; // the body without its closing brace
  const comma = b.length > 2 ? 1 : 0;
  const out = Buffer.allocUnsafe(head + comma + suffix.length);
  b.copy(out, 0, 0, head);
  if (comma) out[head] = 0x2c; // ,
  suffix.copy(out, head + comma);
  return out;
}

/** Every index of `items` failed the same way (the whole request was refused or timed out). */
export function allFailed(n: number, f: Omit<SinkFailure, 'index'>): WriteResult {
  return { ok: 0, failed: Array.from({ length: n }, (_, index) => ({ index, ...f })) };
}

/**
 * A sink kind (issue 13): its config key (`kafka:`, `influx:`), schema, capabilities and a factory that
 * imports the sink's module only when the config uses it. Descriptors are `<name>.descriptor.ts`;
 * collector/sinks/registry.ts lists them.
 */
export interface SinkDescriptor<S extends z.ZodType = z.ZodType> extends Descriptor {
  readonly schema: S;
  /** One line for the docs. */
  readonly summary: string;
  readonly capabilities: {
    /** Items it cannot store permanently go to a dead-letter place of its own. */
    readonly deadLetter: boolean;
    /** Writing the same item twice stores it once (ids/keys), so retries are safe. */
    readonly idempotent: boolean;
  };
  create(cfg: z.output<S>, log: Logger): Promise<Sink>;
}
