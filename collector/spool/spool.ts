// The collector's durable spool (SPEC.md section 5): every accepted item is committed here before its
// batch is acknowledged to the agent, and leaves only when every sink's cursor has passed it.
//
// better-sqlite3 in WAL mode with synchronous=FULL: a commit survives a process kill *and* a power
// loss, which is what the PUBACK promises. One transaction per batch writes the items together with
// their dedup entries, so a batch is either fully spooled (and de-duplicated from then on) or not at all.
// Tables carry a schema version in their name (undici's SQLite store does the same).

import { EventEmitter } from 'node:events';
import type Database from 'better-sqlite3';
import { EdgeflowError } from '../../shared/errors.ts';
import { openDatabase } from '../../shared/sqlite.ts';

export type SpoolKind = 'summaries' | 'alerts' | 'late' | 'status' | 'deadletter';

export interface SpoolEntry {
  kind: SpoolKind;
  agent: string;
  /** Item id (summaries/alerts/late), `status:<ts>` for status, null for dead letters. */
  itemId: string | null;
  rev: number;
  device: string | null;
  /** JSON of the item (agent not yet added), or the raw payload for dead letters. */
  body: Buffer;
  /** Dead letters: why (an error code and a short message). */
  error?: string | null;
  /** Key for the dedup index; null = never de-duplicated. Defaults to (agent, itemId, rev). */
  dedupKey?: string | null;
  /**
   * The item's own time (epoch ms: a summary's window start, an alert's or late event's `ts`), which
   * orders the dedup index so that a batch's keys land next to each other (see DEDUP_SQL). The item id
   * is derived from it, so a re-sent item carries the same time. 0 when there is none (dead letters).
   */
  dedupTime?: number;
  /** MQTT topic the data came in on (dead letters keep it for diagnosis). */
  topic?: string | null;
  /**
   * The item as a value, when the producer has it: equal to `JSON.parse(body)` (ingest's validated
   * item, whose JSON.stringify *is* the body). Memory only (the recent-items cache), never stored.
   */
  value?: unknown;
}

export interface SpoolItem {
  seq: number;
  kind: SpoolKind;
  agent: string;
  itemId: string | null;
  rev: number;
  device: string | null;
  body: Buffer;
  error: string | null;
  topic: string | null;
  receivedAt: number;
  /** `JSON.parse(body)`, present only when served from the recent-items cache (see SpoolEntry.value). */
  value?: unknown;
}

export interface SpoolOptions {
  maxBytes: number;
  sinks: readonly string[];
  dedupRetentionMs: number;
  dedupMaxRows: number;
  now?: () => number;
  /**
   * Items appended by this process and kept in memory for the sink runners (0 = off). A runner whose
   * cursor is within the cached range reads from here instead of SQLite, and both runners get the same
   * objects (one copy, with the parsed `value`). Default 10,000 (~10 MiB of
   * summaries with their parsed values; bounds memory under a backlog).
   */
  recentItems?: number;
}

const ITEMS_TABLE = 'items_v2';
const LEGACY_ITEMS_TABLE = 'items_v1';

/*
 * items_v2 holds one row per *run* of items: the items of one publish that share kind, agent and topic
 * (a summaries batch of 500 is one row) are one row of `n` items, their bodies concatenated in `body`
 * and, per item, [id, rev, device, body length] in `meta` (JSON). Every other entry (dead letters,
 * statuses, a lone item) is a row of one item with its fields in their columns and `meta` NULL, the
 * row items_v1 had. Why: one INSERT per item (10 columns, a 400-byte blob) was the main thread's
 * largest statement after the dedup insert, and each sink thread read the spool row by row (~2.5 µs
 * per item per thread); BENCHMARKS.md section 4 has the before/after.
 * Seqs still number *items*: a row's `seq` is its first item's, its items are seq .. seq + n - 1, and
 * cursors, depth and the recent-items cache count items as before. Rows are contiguous in seq (the
 * next row starts where the last one ended: sqlite_sequence holds the last item's seq, see
 * nextSeq) and are deleted from the front once every cursor has passed their last item.
 * A spool written by a version before items_v2 is migrated at open in one transaction (its rows
 * become rows of one item with the same seqs; cursors are unchanged), so nothing spooled is lost.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${ITEMS_TABLE} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  agent TEXT NOT NULL,
  item_id TEXT,
  rev INTEGER NOT NULL DEFAULT 0,
  device TEXT,
  body BLOB NOT NULL,
  error TEXT,
  topic TEXT,
  bytes INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  n INTEGER NOT NULL DEFAULT 1,
  meta TEXT
);
CREATE TABLE IF NOT EXISTS cursors_v1 (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup_v2 (
  agent TEXT NOT NULL,
  t INTEGER NOT NULL,
  key TEXT NOT NULL,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (agent, t, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_v2_seen ON dedup_v2 (seen_at);
`;

/*
 * Why dedup_v2 is keyed by (agent, item time, key) and not (agent, key) as dedup_v1 was: item ids are
 * digests, so v1's keys were random and every insert dirtied a different page of the index; each group
 * commit wrote (and fsynced) ~one 4 KB page per item into the WAL. The dedup insert was 8 of the
 * spool's 12 µs of CPU per item and 24 of its 32 µs of wall time (200k summaries, batches of 500,
 * BENCHMARKS.md section 4), on the thread that parses MQTT and sends PUBACKs. Items of one batch have
 * neighbouring times, so now they fill a few pages at the end of their agent's range.
 * What it means for de-duplication: a re-sent item is byte for byte the same, with the same time, and
 * is found as before. Two *different* items with one id and rev but different times (an agent bug)
 * are both stored; consumers de-duplicate on `edgeflow-id` (SPEC 4). Nothing is dropped that v1 kept.
 */
const LEGACY_DEDUP_TABLE = 'dedup_v1';

/**
 * Lowest and highest item seq (the last row's last item). Scalar subqueries, not `SELECT MIN(seq),
 * MAX(seq) FROM items_v2`: SQLite's min/max optimisation (one b-tree seek) only applies to a query with
 * a single MIN or MAX; with both in one SELECT it scans the whole table (42 ms per call at 200k items,
 * measured by bench/collector.ts, where it was 20 % of the collector's CPU). spool.test.ts checks the
 * query plan.
 */
export const SPOOL_BOUNDS_SQL = `SELECT (SELECT MIN(seq) FROM ${ITEMS_TABLE}) AS lo, (SELECT seq + n - 1 FROM ${ITEMS_TABLE} WHERE seq = (SELECT MAX(seq) FROM ${ITEMS_TABLE})) AS hi`;
const LAST_SEQ_SQL = `SELECT COALESCE((SELECT seq + n - 1 FROM ${ITEMS_TABLE} WHERE seq = (SELECT MAX(seq) FROM ${ITEMS_TABLE})), 0) AS s`;

/**
 * Rows holding items after a cursor (both parameters: cursor + 1): the row that holds item ?1 (it may start before
 * it), then every later row. Iterated, never `.all()`: `limit` counts items, and a row holds up to a
 * batch of them.
 */
const READ_SQL = `SELECT seq, kind, agent, item_id, rev, device, body, error, topic, received_at, n, meta FROM ${ITEMS_TABLE} WHERE seq >= COALESCE((SELECT seq FROM ${ITEMS_TABLE} WHERE seq <= ? ORDER BY seq DESC LIMIT 1), ?) ORDER BY seq`;
/** The receive time of the row holding item ? (rows are contiguous, so it is the last row starting at or before it). */
const RECEIVED_AT_SQL = `SELECT received_at FROM ${ITEMS_TABLE} WHERE seq <= ? ORDER BY seq DESC LIMIT 1`;

interface ItemRow {
  seq: number;
  kind: SpoolKind;
  agent: string;
  item_id: string | null;
  rev: number;
  device: string | null;
  body: Buffer;
  error: string | null;
  topic: string | null;
  received_at: number;
  n: number;
  meta: string | null;
}

/** Per item of a multi-item row: [item id, rev, device, body length]. */
type ItemMeta = [string | null, number, string | null, number];

/** Up to `limit` items after `cursor`, unpacked from their rows. */
function readAfter(read: Database.Statement, cursor: number, limit: number): SpoolItem[] {
  const out: SpoolItem[] = [];
  if (limit <= 0) return out;
  for (const r of read.iterate(cursor + 1, cursor + 1) as IterableIterator<ItemRow>) {
    if (r.meta === null) {
      if (r.seq > cursor) {
        out.push({
          seq: r.seq,
          kind: r.kind,
          agent: r.agent,
          itemId: r.item_id,
          rev: r.rev,
          device: r.device,
          body: r.body,
          error: r.error,
          topic: r.topic,
          receivedAt: r.received_at,
        });
      }
    } else {
      const meta = JSON.parse(r.meta) as ItemMeta[];
      let off = 0;
      for (let i = 0; i < meta.length && out.length < limit; i++) {
        const [itemId, rev, device, len] = meta[i]!;
        const seq = r.seq + i;
        if (seq > cursor) {
          out.push({
            seq,
            kind: r.kind,
            agent: r.agent,
            itemId,
            rev,
            device,
            body: r.body.subarray(off, off + len),
            error: null,
            topic: r.topic,
            receivedAt: r.received_at,
          });
        }
        off += len;
      }
    }
    if (out.length >= limit) break; // ends the iteration (the statement is reset)
  }
  return out;
}

/** Items after `cursor` and the oldest one's receive time, from O(log n) lookups. */
function depthAfter(
  bounds: Database.Statement,
  receivedAt: Database.Statement,
  cursor: number,
): { items: number; oldestReceivedAt: number | null } {
  const { lo, hi } = bounds.get() as { lo: number | null; hi: number | null };
  if (lo === null || hi === null) return { items: 0, oldestReceivedAt: null };
  const from = Math.max(cursor, lo - 1);
  if (hi <= from) return { items: 0, oldestReceivedAt: null };
  const first = receivedAt.get(from + 1) as { received_at: number } | undefined;
  return { items: hi - from, oldestReceivedAt: first?.received_at ?? null };
}

/** Entries of one publish that can share a row: same kind, agent and topic, no error, not a dead letter. */
function sameRow(a: SpoolEntry, b: SpoolEntry): boolean {
  return (
    a.kind === b.kind &&
    a.agent === b.agent &&
    (a.topic ?? null) === (b.topic ?? null) &&
    a.kind !== 'deadletter' &&
    (a.error ?? null) === null &&
    (b.error ?? null) === null
  );
}

/** Emits 'append' after each committed batch (sink runners wake on it) and 'drain' after deletions. */
export class Spool extends EventEmitter {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private bytes = 0;
  private readonly sinks: readonly string[];
  private readonly stmts;
  private readonly appendTx: (groups: readonly (readonly SpoolEntry[])[]) => {
    res: { stored: number; duplicates: number; added: number }[];
    items: SpoolItem[] | null;
  };
  private readonly advanceTx: (sink: string, seq: number) => number;
  /** Recently appended items, contiguous in seq: recent[recentHead..] (the head moves instead of shift()). */
  private recent: SpoolItem[] = [];
  private recentHead = 0;
  private readonly recentMax: number;

  constructor(
    pathOrDb: string | Database.Database,
    private readonly opts: SpoolOptions,
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.sinks = opts.sinks;
    this.recentMax = Math.max(0, opts.recentItems ?? 10_000);
    try {
      this.db = typeof pathOrDb === 'string' ? openDatabase(pathOrDb) : pathOrDb;
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      // Checkpoint every 10,000 WAL pages (~40 MB), not SQLite's 1,000: the dedup index takes random
      // inserts, so each commit dirties many of its pages, and every checkpoint copies them again.
      // Spool append went from ~13 to ~9 µs of CPU per item (bench: the dedup insert alone). After a
      // checkpoint the WAL file is cut back to 64 MB, so its disk use stays bounded.
      this.db.pragma('wal_autocheckpoint = 10000');
      this.db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
      this.db.exec(SCHEMA);
      this.migrateLegacyItems();
    } catch (e) {
      throw new EdgeflowError(
        'STORE_CORRUPT',
        `cannot open spool ${String(pathOrDb)}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    this.stmts = {
      insertRow: this.db.prepare(
        `INSERT INTO ${ITEMS_TABLE} (seq, kind, agent, item_id, rev, device, body, error, topic, bytes, received_at, n, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      ),
      insertDedup: this.db.prepare(
        'INSERT OR IGNORE INTO dedup_v2 (agent, t, key, seen_at) VALUES (?,?,?,?)',
      ),
      lastAssignedSeq: this.db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck(),
      setLastAssignedSeq: this.db.prepare('UPDATE sqlite_sequence SET seq = ? WHERE name = ?'),
      read: this.db.prepare(READ_SQL),
      getCursor: this.db.prepare('SELECT seq FROM cursors_v1 WHERE sink = ?'),
      setCursor: this.db.prepare(
        'INSERT INTO cursors_v1 (sink, seq) VALUES (?, ?) ON CONFLICT(sink) DO UPDATE SET seq = excluded.seq',
      ),
      // Rows whose last item is at or before the bound (a row is deleted only once every cursor passed all of it).
      sumUpTo: this.db.prepare(
        `SELECT COALESCE(SUM(bytes), 0) AS b FROM ${ITEMS_TABLE} WHERE seq <= ? AND seq + n - 1 <= ?`,
      ),
      deleteUpTo: this.db.prepare(`DELETE FROM ${ITEMS_TABLE} WHERE seq <= ? AND seq + n - 1 <= ?`),
      // O(log n): seqs are contiguous (rows deleted only from the front), so a sink's depth is the last
      // item's seq - its cursor; a COUNT(*) would scan the whole backlog on every runner step.
      bounds: this.db.prepare(SPOOL_BOUNDS_SQL),
      receivedAt: this.db.prepare(RECEIVED_AT_SQL),
      totalBytes: this.db.prepare(`SELECT COALESCE(SUM(bytes), 0) AS b FROM ${ITEMS_TABLE}`),
      maxSeq: this.db.prepare(LAST_SEQ_SQL),
      maxCursor: this.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM cursors_v1').pluck(),
      syncNormal: this.db.prepare('PRAGMA synchronous = NORMAL'),
      syncFull: this.db.prepare('PRAGMA synchronous = FULL'),
      pruneDedupAge: this.db.prepare('DELETE FROM dedup_v2 WHERE seen_at < ?'),
      dedupCount: this.db.prepare('SELECT COUNT(*) AS n FROM dedup_v2'),
      dedupNth: this.db.prepare('SELECT seen_at FROM dedup_v2 ORDER BY seen_at DESC LIMIT 1 OFFSET ?'),
    };
    this.legacyDedup = this.openLegacyDedup();
    this.bytes = (this.stmts.totalBytes.get() as { b: number }).b;
    for (const s of this.sinks) {
      if (this.stmts.getCursor.get(s) === undefined) this.stmts.setCursor.run(s, 0);
    }
    /** Writes one row of `run` (entries of one publish that share it, see sameRow) from seq `seq`. */
    const insertRun = (run: SpoolEntry[], seq: number, bytes: number, t: number): void => {
      const e = run[0]!;
      if (run.length === 1) {
        this.stmts.insertRow.run(
          seq,
          e.kind,
          e.agent,
          e.itemId,
          e.rev,
          e.device,
          e.body,
          e.error ?? null,
          e.topic ?? null,
          bytes,
          t,
          1,
          null,
        );
        return;
      }
      const meta: ItemMeta[] = new Array(run.length);
      const bodies: Buffer[] = new Array(run.length);
      for (let i = 0; i < run.length; i++) {
        const r = run[i]!;
        meta[i] = [r.itemId, r.rev, r.device, r.body.length];
        bodies[i] = r.body;
      }
      this.stmts.insertRow.run(
        seq,
        e.kind,
        e.agent,
        null,
        0,
        null,
        Buffer.concat(bodies),
        null,
        e.topic ?? null,
        bytes,
        t,
        run.length,
        JSON.stringify(meta),
      );
    };
    /** One publish's entries: de-duplicated, then written as rows from seq `next`. */
    const appendOne = (entries: readonly SpoolEntry[], t: number, next: number, out: SpoolItem[] | null) => {
      let stored = 0;
      let duplicates = 0;
      let added = 0;
      let run: SpoolEntry[] = [];
      let runBytes = 0;
      const flush = () => {
        if (run.length === 0) return;
        insertRun(run, next, runBytes, t);
        if (out) {
          for (let i = 0; i < run.length; i++) {
            const e = run[i]!;
            const it: SpoolItem = {
              seq: next + i,
              kind: e.kind,
              agent: e.agent,
              itemId: e.itemId,
              rev: e.rev,
              device: e.device,
              body: e.body,
              error: e.error ?? null,
              topic: e.topic ?? null,
              receivedAt: t,
            };
            if (e.value !== undefined) it.value = e.value;
            out.push(it);
          }
        }
        next += run.length;
        run = [];
        runBytes = 0;
      };
      for (const e of entries) {
        const key =
          e.dedupKey === undefined ? (e.itemId === null ? null : `${e.itemId}#${e.rev}`) : e.dedupKey;
        if (key !== null && this.isDuplicate(e.agent, e.dedupTime ?? 0, key, t)) {
          duplicates++;
          continue;
        }
        if (run.length > 0 && !sameRow(run[0]!, e)) flush();
        const bytes = e.body.length + 64;
        run.push(e);
        runBytes += bytes;
        added += bytes;
        stored++;
      }
      flush();
      return { res: { stored, duplicates, added }, next };
    };
    this.appendTx = this.db.transaction((groups: readonly (readonly SpoolEntry[])[]) => {
      const t = this.now();
      const out: SpoolItem[] | null = this.recentMax > 0 && this.sinks.length > 0 ? [] : null;
      // Read inside the transaction: another connection may have appended since (tests do).
      const first = this.nextSeq();
      let next = first;
      const res = groups.map((g) => {
        const r = appendOne(g, t, next, out);
        next = r.next;
        return r.res;
      });
      // The last item's seq, not the last row's: the next row starts after it, even once it is deleted.
      if (next > first) this.stmts.setLastAssignedSeq.run(next - 1, ITEMS_TABLE);
      return { res, items: out };
    }) as unknown as typeof this.appendTx;
    this.advanceTx = this.db.transaction((sink: string, seq: number) => {
      this.stmts.setCursor.run(sink, seq);
      const all = this.sinks.map((s) => (s === sink ? seq : this.cursor(s)));
      return this.deletePassed(all.length > 0 ? Math.min(...all) : seq);
    }) as unknown as (sink: string, seq: number) => number;
    // Items no configured sink needs any more (e.g. a sink was removed from the config) go now.
    this.collect();
  }

  /**
   * The seq of the next item: after the last one ever assigned (sqlite_sequence, which insertRun's
   * transaction sets to the last item's seq), and after every cursor (a cursor past every row must never
   * see a new item behind it).
   */
  private nextSeq(): number {
    const last = (this.stmts.lastAssignedSeq.get(ITEMS_TABLE) as number | undefined) ?? 0;
    return Math.max(last, this.stmts.maxCursor.get() as number) + 1;
  }

  /**
   * A spool written before items_v2 (one row per item in items_v1): its rows move into items_v2 as rows
   * of one item with their seqs, in one transaction (all or nothing), and items_v1 is dropped. Cursors
   * count the same seqs, so every sink resumes where it was: nothing spooled is lost or sent twice.
   */
  private migrateLegacyItems(): void {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
      .get(LEGACY_ITEMS_TABLE);
    if (!exists) return;
    this.db.transaction(() => {
      this.db.exec(
        `INSERT INTO ${ITEMS_TABLE} (seq, kind, agent, item_id, rev, device, body, error, topic, bytes, received_at, n, meta)
         SELECT seq, kind, agent, item_id, rev, device, body, error, topic, bytes, received_at, 1, NULL FROM ${LEGACY_ITEMS_TABLE}`,
      );
      const used = this.db
        .prepare('SELECT seq FROM sqlite_sequence WHERE name = ?')
        .pluck()
        .get(LEGACY_ITEMS_TABLE) as number | undefined;
      if (used !== undefined) {
        // Keep the old table's high-water mark (its last rows may be deleted already).
        const has = this.db.prepare('SELECT 1 FROM sqlite_sequence WHERE name = ?').get(ITEMS_TABLE);
        if (has)
          this.db
            .prepare('UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?')
            .run(used, ITEMS_TABLE);
        else this.db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run(ITEMS_TABLE, used);
      }
      this.db.exec(`DROP TABLE ${LEGACY_ITEMS_TABLE}`);
    })();
  }

  /**
   * A spool written before dedup_v2 still has keys in dedup_v1: they are looked up (reads only) and
   * pruned by age until none is left, then the table is dropped. Null when there is no such table.
   */
  private legacyDedup: { has: Database.Statement; prune: Database.Statement } | null;

  private openLegacyDedup(): { has: Database.Statement; prune: Database.Statement } | null {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
      .get(LEGACY_DEDUP_TABLE);
    if (!exists) return null;
    if (!this.db.prepare(`SELECT 1 FROM ${LEGACY_DEDUP_TABLE} LIMIT 1`).get()) {
      this.db.exec(`DROP TABLE ${LEGACY_DEDUP_TABLE}`);
      return null;
    }
    return {
      has: this.db.prepare(`SELECT 1 FROM ${LEGACY_DEDUP_TABLE} WHERE agent = ? AND key = ?`),
      prune: this.db.prepare(`DELETE FROM ${LEGACY_DEDUP_TABLE} WHERE seen_at < ?`),
    };
  }

  /** Records the key (inside the append transaction); true if it was seen before. */
  private isDuplicate(agent: string, itemTime: number, key: string, now: number): boolean {
    if (this.stmts.insertDedup.run(agent, itemTime, key, now).changes === 0) return true;
    return this.legacyDedup !== null && this.legacyDedup.has.get(agent, key) !== undefined;
  }

  /** True when the spool holds maxBytes or more; the broker then withholds PUBACKs (back-pressure). */
  isFull(): boolean {
    return this.bytes >= this.opts.maxBytes;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Appends one batch atomically. Entries whose dedup key was seen before are skipped and counted. */
  append(entries: readonly SpoolEntry[]): { stored: number; duplicates: number } {
    return this.appendGroup([entries])[0]!;
  }

  /**
   * Appends several batches in one transaction (group commit: one fsync for all of them); each batch's
   * result in order. All or nothing: on failure none is stored.
   */
  appendGroup(groups: readonly (readonly SpoolEntry[])[]): { stored: number; duplicates: number }[] {
    let res: { stored: number; duplicates: number; added: number }[];
    try {
      const r = this.appendTx(groups);
      res = r.res;
      if (r.items) this.remember(r.items); // only after the commit
    } catch (e) {
      throw new EdgeflowError('STORE_WRITE_FAILED', `spool write failed: ${(e as Error).message}`, {
        cause: e,
      });
    }
    let stored = 0;
    for (const r of res) {
      this.bytes += r.added;
      stored += r.stored;
    }
    if (this.sinks.length === 0) this.collect();
    if (stored > 0) this.emit('append');
    return res.map((r) => ({ stored: r.stored, duplicates: r.duplicates }));
  }

  /** Cursors are read on every step of every runner: kept in memory, written through. */
  private readonly cursorCache = new Map<string, number>();

  cursor(sink: string): number {
    const cached = this.cursorCache.get(sink);
    if (cached !== undefined) return cached;
    const r = this.stmts.getCursor.get(sink) as { seq: number } | undefined;
    const v = r?.seq ?? 0;
    this.cursorCache.set(sink, v);
    return v;
  }

  /** Up to `limit` items after the sink's cursor, oldest first. */
  read(sink: string, limit: number): SpoolItem[] {
    const cached = this.readRecent(this.cursor(sink), limit);
    if (cached) return cached;
    return readAfter(this.stmts.read, this.cursor(sink), limit);
  }

  private remember(items: readonly SpoolItem[]): void {
    if (items.length === 0) return;
    const last = this.recent.length > this.recentHead ? this.recent[this.recent.length - 1]! : null;
    if (last && items[0]!.seq !== last.seq + 1) this.forgetRecent(); // never cache with a gap
    for (const it of items) this.recent.push(it);
    this.trimRecent(this.recent.length - this.recentMax);
  }

  private forgetRecent(): void {
    this.recent = [];
    this.recentHead = 0;
  }

  /** Drops the oldest `n` cached items. */
  private trimRecent(n: number): void {
    if (n <= 0) return;
    this.recentHead = Math.min(this.recent.length, this.recentHead + n);
    if (this.recentHead === this.recent.length) this.forgetRecent();
    else if (this.recentHead > 4096 && this.recentHead * 2 > this.recent.length) {
      this.recent = this.recent.slice(this.recentHead);
      this.recentHead = 0;
    }
  }

  /**
   * The items after `cursor` from the cache, or null when the cache does not hold all of them (cursor
   * before the cached range, or rows appended by someone else: the newest seq in SQLite must be the
   * newest cached one).
   */
  private readRecent(cursor: number, limit: number): SpoolItem[] | null {
    const n = this.recent.length - this.recentHead;
    if (n === 0) return null;
    const first = this.recent[this.recentHead]!.seq;
    const last = this.recent[this.recent.length - 1]!.seq;
    if (cursor < first - 1) return null;
    if ((this.stmts.maxSeq.get() as { s: number }).s !== last) {
      this.forgetRecent();
      return null;
    }
    if (cursor >= last) return [];
    const from = this.recentHead + (cursor + 1 - first);
    return this.recent.slice(from, Math.min(this.recent.length, from + limit));
  }

  /**
   * Moves a sink's cursor (never backwards) and deletes what every sink has passed: one transaction,
   * committed without an fsync of its own (synchronous=NORMAL for this commit only). Why: each sink
   * advances once per write, so these commits outnumbered the appends and each one blocked the main
   * thread (the one that parses MQTT and sends PUBACKs) for an fsync. What it changes: nothing after a
   * process kill (the commit is in the WAL, i.e. the OS's cache); after a power loss a cursor can come
   * back behind where it was, so items already written are written again (at least once; consumers
   * de-duplicate on `edgeflow-id`, SPEC 4). The next append's fsync (FULL) makes it durable with
   * itself, and WAL recovery keeps a prefix of the commits: an acknowledged append is never lost and a
   * cursor never comes back ahead of its rows.
   */
  advance(sink: string, seq: number): void {
    if (seq <= this.cursor(sink)) return;
    this.stmts.syncNormal.run();
    let freed: number;
    try {
      freed = this.advanceTx(sink, seq);
    } finally {
      this.stmts.syncFull.run();
    }
    this.cursorCache.set(sink, seq);
    this.freed(freed);
  }

  private collect(): void {
    const upTo =
      this.sinks.length === 0
        ? (this.stmts.maxSeq.get() as { s: number }).s
        : Math.min(...this.sinks.map((s) => this.cursor(s)));
    this.freed(this.db.transaction(() => this.deletePassed(upTo))());
  }

  /** Deletes rows up to `upTo` (inside the caller's transaction); returns the bytes freed. */
  private deletePassed(upTo: number): number {
    if (upTo <= 0) return 0;
    const b = (this.stmts.sumUpTo.get(upTo, upTo) as { b: number }).b;
    if (b > 0) this.stmts.deleteUpTo.run(upTo, upTo);
    return b;
  }

  private freed(bytes: number): void {
    const n = this.recent.length - this.recentHead;
    if (n > 0 && this.sinks.length > 0) {
      const passed = Math.min(...this.sinks.map((s) => this.cursor(s)));
      this.trimRecent(Math.min(n, passed - this.recent[this.recentHead]!.seq + 1));
    }
    if (bytes > 0) {
      this.bytes = Math.max(0, this.bytes - bytes);
      this.emit('drain');
    }
  }

  /** Items waiting for a sink, and the oldest one's receive time (epoch ms) or null. */
  depth(sink: string): { items: number; oldestReceivedAt: number | null } {
    return depthAfter(this.stmts.bounds, this.stmts.receivedAt, this.cursor(sink));
  }

  /** Drops dedup entries older than the retention, then the oldest beyond dedupMaxRows. */
  pruneDedup(): number {
    const cutoff = this.now() - this.opts.dedupRetentionMs;
    let removed = this.stmts.pruneDedupAge.run(cutoff).changes;
    if (this.legacyDedup) {
      removed += this.legacyDedup.prune.run(cutoff).changes;
      this.legacyDedup = this.openLegacyDedup(); // dropped once empty
    }
    const n = (this.stmts.dedupCount.get() as { n: number }).n;
    if (n > this.opts.dedupMaxRows) {
      const cut = this.stmts.dedupNth.get(this.opts.dedupMaxRows) as { seen_at: number } | undefined;
      // The row at the cut and everything as old or older: entries of one batch share a timestamp and
      // go together, so the index holds at most dedupMaxRows afterwards.
      if (cut) removed += this.stmts.pruneDedupAge.run(cut.seen_at + 1).changes;
    }
    return removed;
  }

  dedupSize(): number {
    return (this.stmts.dedupCount.get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * A read-only connection to a spool that another connection writes (the collector's main thread): how
 * a sink thread reads its items. In WAL mode readers and the writer never block each other, and a
 * reader only sees committed batches. Rows a sink has not passed are never deleted under it: the
 * writer deletes only up to the lowest cursor it has been told about, and a sink thread's own cursor
 * is never behind what it told.
 */
export class SpoolReader {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(path: string) {
    try {
      this.db = openDatabase(path, { readonly: true, fileMustExist: true });
      this.db.pragma('busy_timeout = 5000');
    } catch (e) {
      throw new EdgeflowError('STORE_CORRUPT', `cannot open spool ${path}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    this.stmts = {
      read: this.db.prepare(READ_SQL),
      bounds: this.db.prepare(SPOOL_BOUNDS_SQL),
      receivedAt: this.db.prepare(RECEIVED_AT_SQL),
    };
  }

  /** Up to `limit` items after `cursor`, oldest first. */
  read(cursor: number, limit: number): SpoolItem[] {
    return readAfter(this.stmts.read, cursor, limit);
  }

  depth(cursor: number): { items: number; oldestReceivedAt: number | null } {
    return depthAfter(this.stmts.bounds, this.stmts.receivedAt, cursor);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
