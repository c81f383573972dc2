// An in-memory Outbox for tests of the runtime and the uplink. Same contract and size policy as the SQLite
// outbox (agent/outbox/policy.ts, checked by outbox.conformance.ts), no durability.
import type { EdgeflowError } from '../../shared/errors.ts';
import type {
  AppendResult,
  CheckpointEntries,
  OnFull,
  Outbox,
  OutboxItem,
  OutboxKind,
  OutboxLimits,
  OutboxStats,
  StoredItem,
} from './outbox.ts';
import { DEFAULT_ON_FULL, emptyByKind, encodeItem, planAppend } from './policy.ts';

interface MemRow {
  kind: OutboxKind;
  seq: number;
  id: string;
  rev: number;
  ts: number;
  json: string;
  bytes: number;
}

export class MemoryOutbox implements Outbox {
  // Insertion order of a Map is seq order, so iteration is oldest first.
  private readonly rows = new Map<number, MemRow>();
  private readonly checkpoints = new Map<string, string>();
  private readonly count = emptyByKind();
  private readonly bytesByKind = emptyByKind();
  private readonly dropped = emptyByKind();
  private rejected = 0;
  private lastSeq = 0;
  private readonly maxBytes: number;
  private readonly onFull: OnFull;
  /** Tests set this to make the next appends fail like a full disk. */
  failWrites: EdgeflowError | null = null;
  private writeErrors = 0;

  constructor(opts: OutboxLimits = {}) {
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    this.onFull = opts.onFull ?? DEFAULT_ON_FULL;
  }

  append(items: readonly OutboxItem[], checkpoint?: CheckpointEntries): AppendResult {
    const encoded = items.map(encodeItem);
    if (this.failWrites) {
      this.writeErrors++;
      return { appended: 0, dropped: 0, rejected: 0, error: this.failWrites };
    }
    const plan = planAppend(encoded, this.bytesByKind, this.maxBytes, this.onFull);
    let dropped = 0;
    for (const kind of ['summaries', 'late'] as const) {
      let need = plan.freeStored[kind];
      for (const [seq, r] of this.rows) {
        if (need <= 0) break;
        if (r.kind !== kind) continue;
        this.remove(seq, r);
        need -= r.bytes;
        this.dropped[kind]++;
        dropped++;
      }
      this.dropped[kind] += plan.droppedNew[kind];
      dropped += plan.droppedNew[kind];
    }
    let appended = 0;
    encoded.forEach((it, i) => {
      if (!plan.store[i]) return;
      const row: MemRow = { ...it, seq: ++this.lastSeq };
      this.rows.set(row.seq, row);
      this.count[it.kind]++;
      this.bytesByKind[it.kind] += it.bytes;
      appended++;
    });
    this.rejected += plan.rejected;
    if (checkpoint)
      for (const [k, v] of checkpoint) {
        if (v === null) this.checkpoints.delete(k);
        else this.checkpoints.set(k, v);
      }
    return { appended, dropped, rejected: plan.rejected, lastSeq: this.lastSeq };
  }

  peek(kind: OutboxKind, limit: number, afterSeq = 0): StoredItem[] {
    const out: StoredItem[] = [];
    if (limit <= 0) return out;
    for (const r of this.rows.values()) {
      if (r.kind !== kind || r.seq <= afterSeq) continue;
      out.push({ ...r, body: JSON.parse(r.json) });
      if (out.length >= limit) break;
    }
    return out;
  }

  ack(seqs: readonly number[]): void {
    for (const seq of seqs) {
      const r = this.rows.get(seq);
      if (r) this.remove(seq, r);
    }
  }

  readCheckpoint(key: string): string | undefined {
    return this.checkpoints.get(key);
  }

  readCheckpoints(prefix: string): [string, string][] {
    const out: [string, string][] = [];
    for (const [k, v] of this.checkpoints) if (k.startsWith(prefix)) out.push([k, v]);
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  stats(): OutboxStats {
    let oldestTs: number | null = null;
    for (const kind of ['summaries', 'alerts', 'late'] as const) {
      const head = this.peek(kind, 1)[0];
      if (head && (oldestTs === null || head.ts < oldestTs)) oldestTs = head.ts;
    }
    return {
      items: this.rows.size,
      bytes: this.bytesByKind.summaries + this.bytesByKind.alerts + this.bytesByKind.late,
      oldestTs,
      byKind: { ...this.count },
      bytesByKind: { ...this.bytesByKind },
      dropped: { ...this.dropped },
      rejected: this.rejected,
      writeErrors: this.writeErrors,
    };
  }

  close(): void {}

  private remove(seq: number, r: MemRow): void {
    this.rows.delete(seq);
    this.count[r.kind]--;
    this.bytesByKind[r.kind] -= r.bytes;
  }
}
