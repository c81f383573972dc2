// The ingest topic's record (docs/design/cluster.md "Ingest record"): what an ingest node accepted from
// one uplink PUBLISH, after validation, as the spool would have stored it. Key = agent id (all of one
// agent's batches in one partition, so de-duplication is partition-local); value = JSON
//   {"v":1,"agent":"gw-1","node":"ingest-a","entries":[{"kind":"summaries","id":"…","rev":0,
//    "device":"press-1","topic":"…","item":{…}} | {"kind":"deadletter",…,"raw":"<base64>","error":"…"}]}
// Valid items travel as JSON (their body is JSON.stringify of the validated item, so parse → stringify on
// the forwarder gives the same bytes); dead letters carry their raw payload in base64.
import { EdgeflowError } from '../../shared/errors.ts';
import type { SpoolEntry, SpoolItem, SpoolKind } from '../spool/spool.ts';

export const INGEST_RECORD_VERSION = 1;

/** Largest value an ingest node puts in one record; a bigger batch is split (Kafka's default limit is 1 MiB). */
export const MAX_RECORD_BYTES = 900 * 1024;

const KINDS: readonly SpoolKind[] = ['summaries', 'alerts', 'late', 'status', 'deadletter'];

function spoolKind(v: unknown): SpoolKind | null {
  return KINDS.find((k) => k === v) ?? null;
}

/** The entry's de-duplication key, as the spool computes it (spool.ts appendGroup). */
export function dedupKeyOf(e: Pick<SpoolEntry, 'dedupKey' | 'itemId' | 'rev'>): string | null {
  return e.dedupKey === undefined ? (e.itemId === null ? null : `${e.itemId}#${e.rev}`) : e.dedupKey;
}

function entryJson(e: SpoolEntry): string {
  const head = {
    kind: e.kind,
    id: e.itemId,
    rev: e.rev,
    device: e.device,
    topic: e.topic ?? null,
    dedup: dedupKeyOf(e),
  };
  const h = JSON.stringify(head);
  if (e.kind === 'deadletter') {
    return `${h.slice(0, -1)},"error":${JSON.stringify(e.error ?? null)},"raw":"${e.body.toString('base64')}"}`;
  }
  // The body is JSON already (ingest.ts): splice it in instead of parsing it again.
  return `${h.slice(0, -1)},"item":${e.body.toString('utf8')}}`;
}

/** Encodes one publish's entries as one or more record values (split at MAX_RECORD_BYTES). */
export function encodeIngestRecords(agent: string, node: string, entries: readonly SpoolEntry[]): Buffer[] {
  const prefix = `{"v":${INGEST_RECORD_VERSION},"agent":${JSON.stringify(agent)},"node":${JSON.stringify(node)},"entries":[`;
  const out: Buffer[] = [];
  let parts: string[] = [];
  let size = prefix.length + 2;
  for (const e of entries) {
    const j = entryJson(e);
    if (parts.length > 0 && size + j.length + 1 > MAX_RECORD_BYTES) {
      out.push(Buffer.from(`${prefix}${parts.join(',')}]}`));
      parts = [];
      size = prefix.length + 2;
    }
    parts.push(j);
    size += j.length + 1;
  }
  if (parts.length > 0 || out.length === 0) out.push(Buffer.from(`${prefix}${parts.join(',')}]}`));
  return out;
}

/** One decoded entry: a SpoolItem (what the sinks' record builders take) plus its dedup key. */
export interface IngestItem {
  item: SpoolItem;
  dedupKey: string | null;
}

export class IngestRecordError extends EdgeflowError {
  constructor(message: string) {
    super('INGEST_RECORD_INVALID', message);
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * Decodes a record value. `receivedAt` is the record's timestamp (when the ingest node produced it).
 * Throws IngestRecordError on a record this version cannot read (the forwarder dead-letters it).
 */
export function decodeIngestRecord(
  value: Buffer,
  receivedAt: number,
): { agent: string; items: IngestItem[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(value.toString('utf8'));
  } catch (e) {
    throw new IngestRecordError(`ingest record is not JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new IngestRecordError('ingest record is not an object');
  const d = doc as Record<string, unknown>;
  if (d.v !== INGEST_RECORD_VERSION) throw new IngestRecordError(`ingest record version ${String(d.v)}`);
  const agent = str(d.agent);
  if (agent === null || !Array.isArray(d.entries))
    throw new IngestRecordError('ingest record without agent/entries');
  const items: IngestItem[] = [];
  for (const raw of d.entries as unknown[]) {
    if (typeof raw !== 'object' || raw === null) throw new IngestRecordError('entry is not an object');
    const r = raw as Record<string, unknown>;
    const kind = spoolKind(r.kind);
    if (kind === null) throw new IngestRecordError(`entry kind ${String(r.kind)}`);
    const isDl = kind === 'deadletter';
    const rawB64 = str(r.raw);
    if (isDl && rawB64 === null) throw new IngestRecordError('dead letter without raw');
    const body = isDl ? Buffer.from(rawB64 ?? '', 'base64') : Buffer.from(JSON.stringify(r.item));
    items.push({
      dedupKey: str(r.dedup),
      item: {
        seq: 0,
        kind,
        agent,
        itemId: str(r.id),
        rev: typeof r.rev === 'number' ? r.rev : 0,
        device: str(r.device),
        body,
        error: str(r.error),
        topic: str(r.topic),
        receivedAt,
        ...(isDl ? {} : { value: r.item }),
      },
    });
  }
  return { agent, items };
}
