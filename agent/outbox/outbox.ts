// The outbox: every summary, alert and late event leaves the agent only through here (SPEC.md section 5).
// An item is deleted only after the collector acknowledged (PUBACK) the batch that carried it.
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
  /** Monotonic position in the outbox; acknowledgement is by seq. */
  seq: number;
  bytes: number;
}

export interface OutboxStats {
  items: number;
  bytes: number;
  oldestTs: number | null;
  byKind: Record<OutboxKind, number>;
  /** Items dropped by the `onFull` policy, by kind, since the outbox was created (persisted). */
  dropped: Record<OutboxKind, number>;
  /** Items refused by `reject-new`. */
  rejected: number;
  writeErrors: number;
}

export interface AppendResult {
  appended: number;
  dropped: number;
  rejected: number;
}

export interface Outbox {
  /**
   * Appends items and (optionally) saves checkpoint entries in the same transaction, so window/rule
   * state and the summaries it emitted are durable together (issue 4: no loss, no double count).
   */
  append(items: readonly OutboxItem[], checkpoint?: ReadonlyMap<string, string>): AppendResult;
  /** Oldest items of one kind not yet handed out; `afterSeq` skips items already in flight. */
  peek(kind: OutboxKind, limit: number, afterSeq?: number): StoredItem[];
  /** Deletes acknowledged items. */
  ack(seqs: readonly number[]): void;
  readCheckpoint(key: string): string | undefined;
  stats(): OutboxStats;
  close(): void;
}
