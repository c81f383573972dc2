// The outbox: every summary, alert and late event leaves the agent only through here (SPEC.md section 5).
// An item is deleted only after the collector acknowledged (PUBACK) the batch that carried it.
import type { EdgeflowError } from '../../shared/errors.ts';
import type { ItemKind } from '../../shared/model.ts';

export type OutboxKind = ItemKind; // 'summaries' | 'alerts' | 'late'

export interface OutboxItem {
  kind: OutboxKind;
  /** Deterministic item id (shared/ids.ts) plus revision: a re-sent item keeps both. */
  id: string;
  rev: number;
  /** Event time of the item (window start, alert ts) for oldest-age reporting. */
  ts: number;
  /** The item exactly as it goes on the wire (JSON-serialisable). */
  body: unknown;
}

export interface StoredItem extends OutboxItem {
  /** Monotonic position in the outbox, never reused (also not after a restart); acknowledgement is by seq. */
  seq: number;
  bytes: number;
  /** `body` as stored, JSON text: the uplink splices it into a batch without a parse/stringify round trip. */
  json: string;
}

export interface OutboxStats {
  items: number;
  bytes: number;
  oldestTs: number | null;
  byKind: Record<OutboxKind, number>;
  /** Stored bytes per kind (the size policy's measure); alerts may exceed maxBytes, the rest may not. */
  bytesByKind: Record<OutboxKind, number>;
  /** Items dropped by the `onFull` policy, by kind, since the outbox was created (persisted). */
  dropped: Record<OutboxKind, number>;
  /** Items refused by `reject-new`. */
  rejected: number;
  writeErrors: number;
}

export interface AppendResult {
  appended: number;
  /** Items removed by `drop-oldest-summaries` to make room (older ones, or new ones when nothing older is left). */
  dropped: number;
  rejected: number;
  /**
   * Highest seq in the outbox after a successful append. The `appended` items of this call have the
   * consecutive seqs `lastSeq - appended + 1 … lastSeq`: the uplink tells from them when an item was
   * committed (issue 19, the uplink_queue stage).
   */
  lastSeq?: number;
  /**
   * Set when the write failed (disk full, I/O error): nothing of this call was stored, the checkpoint
   * included. Code STORE_WRITE_FAILED, retriable; the caller keeps its state and tries again later.
   */
  error?: EdgeflowError;
}

/** Checkpoint entries written with an append: key → value, or null to delete the key. */
export type CheckpointEntries = ReadonlyMap<string, string | null>;

export type OnFull = 'drop-oldest-summaries' | 'reject-new';

/** Size policy shared by every implementation (the conformance suite checks it). */
export interface OutboxLimits {
  /** Bound on the sum of `bytes` of stored items. Alerts are never dropped or refused: only they may exceed it. */
  maxBytes?: number;
  onFull?: OnFull;
}

export interface Outbox {
  /**
   * Appends items and (optionally) saves checkpoint entries in the same transaction, so window/rule
   * state and the summaries it emitted are durable together (issue 4: no loss, no double count).
   * A `null` value deletes the entry (the incremental checkpoint's parts of a device that is gone).
   */
  append(items: readonly OutboxItem[], checkpoint?: CheckpointEntries): AppendResult;
  /** Oldest items of one kind not yet handed out; `afterSeq` skips items already in flight. */
  peek(kind: OutboxKind, limit: number, afterSeq?: number): StoredItem[];
  /** Deletes acknowledged items. */
  ack(seqs: readonly number[]): void;
  readCheckpoint(key: string): string | undefined;
  /** Every checkpoint entry whose key starts with `prefix`, in key order. */
  readCheckpoints(prefix: string): [key: string, value: string][];
  stats(): OutboxStats;
  close(): void;
}
