// Encoding and the size policy (buffer.maxBytes / buffer.onFull, SPEC.md section 2), written once and used
// by every Outbox implementation so the SQLite and the memory outbox cannot drift (the conformance suite
// checks both).
//
// The rule, in one place:
//   - `bytes` of an item = UTF-8 length of its JSON body + its id + ROW_OVERHEAD (an estimate of SQLite's
//     per-row cost), so maxBytes tracks the database size roughly, not exactly.
//   - Alerts are never dropped nor refused by the size policy. The bound can therefore be exceeded, by
//     alerts only; a full outbox of alerts means an operator must act (status shows it).
//   - drop-oldest-summaries: to make room, drop the oldest summaries first (stored ones, then the oldest of
//     the new ones), then late events the same way. Every dropped item is counted per kind.
//   - reject-new: stored items stay; a new summary or late event that does not fit is refused and counted.
import type { OnFull, OutboxItem, OutboxKind } from './outbox.ts';

export const ROW_OVERHEAD = 16;
export const DEFAULT_ON_FULL: OnFull = 'drop-oldest-summaries';

export interface EncodedItem {
  kind: OutboxKind;
  id: string;
  rev: number;
  ts: number;
  json: string;
  bytes: number;
}

export function encodeItem(item: OutboxItem): EncodedItem {
  const json = JSON.stringify(item.body);
  if (typeof json !== 'string') throw new TypeError(`outbox item ${item.id}: body is not JSON-serialisable`);
  return {
    kind: item.kind,
    id: item.id,
    rev: item.rev,
    ts: item.ts,
    json,
    bytes: Buffer.byteLength(json, 'utf8') + item.id.length + ROW_OVERHEAD,
  };
}

export interface AppendPlan {
  /** Per new item: store it or not. */
  store: boolean[];
  /** New items not stored because drop-oldest ran out of older ones to drop, per kind. */
  droppedNew: Record<OutboxKind, number>;
  rejected: number;
  /** Minimum bytes of the oldest *stored* items of each kind to delete (whole items, so possibly a bit more). */
  freeStored: { summaries: number; late: number };
}

/**
 * Decides an append against the current totals. `storedBytes` are the bytes held per kind now.
 * Pure, so both implementations share it; they only carry out `freeStored` their own way.
 */
export function planAppend(
  items: readonly EncodedItem[],
  storedBytes: Readonly<Record<OutboxKind, number>>,
  maxBytes: number,
  onFull: OnFull,
): AppendPlan {
  const plan: AppendPlan = {
    store: items.map(() => true),
    droppedNew: { summaries: 0, alerts: 0, late: 0 },
    rejected: 0,
    freeStored: { summaries: 0, late: 0 },
  };
  const total = storedBytes.summaries + storedBytes.alerts + storedBytes.late;
  let incoming = 0;
  for (const it of items) incoming += it.bytes;
  if (!Number.isFinite(maxBytes) || total + incoming <= maxBytes) return plan;

  if (onFull === 'reject-new') {
    let running = total;
    items.forEach((it, i) => {
      if (it.kind === 'alerts' || running + it.bytes <= maxBytes) running += it.bytes;
      else {
        plan.store[i] = false;
        plan.rejected++;
      }
    });
    return plan;
  }

  let need = total + incoming - maxBytes;
  for (const kind of ['summaries', 'late'] as const) {
    if (need <= 0) break;
    const fromStored = Math.min(need, storedBytes[kind]);
    if (fromStored > 0) {
      plan.freeStored[kind] = fromStored;
      need -= fromStored;
    }
    for (let i = 0; i < items.length && need > 0; i++) {
      const it = items[i]!;
      if (it.kind !== kind) continue;
      plan.store[i] = false;
      plan.droppedNew[kind]++;
      need -= it.bytes;
    }
  }
  return plan;
}

export function emptyByKind(): Record<OutboxKind, number> {
  return { summaries: 0, alerts: 0, late: 0 };
}
