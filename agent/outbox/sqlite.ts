// The agent's durable outbox on SQLite (better-sqlite3: synchronous, fast, the one native addon we allow
// besides serialport). Design notes in docs/design/outbox.md.
//
// Durability: journal_mode=WAL with synchronous=NORMAL by default. A commit has been written (write(2))
// into the WAL before `append()` returns, so it lives in the kernel's page cache and survives the death of
// the process (kill -9, OOM, crash) — the requirement of issue 4. What NORMAL gives up is the fsync per
// commit: on power loss or kernel panic the last transactions since the last WAL checkpoint may be lost,
// but the database stays consistent (SQLite docs, "WAL mode ... synchronous=NORMAL ... is safe from
// corruption"). `synchronous: 'full'` fsyncs every commit; bench/outbox.ts measures what that costs.
//
// Schema version lives in the table names (outbox_v1, checkpoint_v1, meta_v1): a v2 layout gets new
// tables and a migration, an old binary never misreads a new file.
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { type Logger, nullLogger } from '../../shared/log.ts';
import { openDatabase } from '../../shared/sqlite.ts';
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
import { DEFAULT_ON_FULL, type EncodedItem, emptyByKind, encodeItem, planAppend } from './policy.ts';

export interface SqliteOutboxOptions extends OutboxLimits {
  /** Database file (the runtime uses `<dataDir>/outbox.db`), or ':memory:' in tests. */
  path: string;
  /** buffer.synchronous: 'normal' (default, see the header) or 'full' (fsync per commit). */
  synchronous?: 'normal' | 'full';
  /** Page size of a newly created file (an existing file keeps its own), bytes. [4096] */
  pageSize?: number;
  /**
   * WAL size that triggers a checkpoint into the database, bytes. [40 MB: bulk throughput, see openDb]
   * The agent passes a small value (256 KB): its commits are small and periodic, and a WAL that may grow
   * to 40 MB can fill a small data partition by itself and then cannot be checkpointed (disk full for good).
   */
  walAutocheckpointBytes?: number;
  log?: Logger;
  clock?: Clock;
}

// Kinds are stored as small integers (1 byte per row instead of a string).
const KIND_CODE: Record<OutboxKind, number> = { alerts: 0, late: 1, summaries: 2 };
const CODE_KIND: readonly OutboxKind[] = ['alerts', 'late', 'summaries'];
const KINDS: readonly OutboxKind[] = CODE_KIND;

// `summaries` are the bulk: no secondary index on them, so appending one touches only the table b-tree;
// they are read in rowid order, skipping the (rare) other kinds. Alerts and late events get a partial
// index, so peeking alerts during a backlog of a million summaries does not scan.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox_v1 (
  seq   INTEGER PRIMARY KEY,
  kind  INTEGER NOT NULL,
  id    TEXT    NOT NULL,
  rev   INTEGER NOT NULL,
  ts    INTEGER NOT NULL,
  body  TEXT    NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_v1_rare ON outbox_v1 (kind, seq) WHERE kind <> 2;
CREATE TABLE IF NOT EXISTS checkpoint_v1 (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta_v1 (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`;

const COLS = 'seq, id, rev, ts, body, bytes';

type Row = [seq: number, id: string, rev: number, ts: number, body: string, bytes: number];

/** A stored item whose body is parsed only when someone asks (the uplink uses `json`). */
class SqliteStoredItem implements StoredItem {
  constructor(
    readonly kind: OutboxKind,
    readonly seq: number,
    readonly id: string,
    readonly rev: number,
    readonly ts: number,
    readonly json: string,
    readonly bytes: number,
  ) {}
  get body(): unknown {
    return JSON.parse(this.json);
  }
}

function sqliteCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function isCorruption(e: unknown): boolean {
  const c = sqliteCode(e) ?? '';
  return c === 'SQLITE_NOTADB' || c.startsWith('SQLITE_CORRUPT');
}

/** Errors of the storage itself (disk full, read-only, I/O), as opposed to programming errors. */
function isStorageError(e: unknown): boolean {
  const c = sqliteCode(e) ?? '';
  return (
    c.startsWith('SQLITE_FULL') ||
    c.startsWith('SQLITE_IOERR') ||
    c.startsWith('SQLITE_READONLY') ||
    c.startsWith('SQLITE_CANTOPEN') ||
    c.startsWith('SQLITE_PERM') ||
    c.startsWith('SQLITE_BUSY') ||
    c === 'EROFS' ||
    c === 'EACCES' ||
    c === 'ENOSPC'
  );
}

export class SqliteOutbox implements Outbox {
  readonly path: string;
  /** Where a corrupt database was moved at open, if that happened (for status and tests). */
  readonly movedAside: string | null = null;

  private readonly db: Database.Database;
  private readonly log: Logger;
  private readonly maxBytes: number;
  private readonly onFull: OnFull;

  // Prepared statements, prepared once (undici's SQLite cache does the same).
  private readonly insertStmt: Database.Statement;
  private readonly peekSummariesStmt: Database.Statement;
  private readonly peekRareStmt: Database.Statement;
  private readonly ackStmt: Database.Statement;
  private readonly ackRangeStmt: Database.Statement;
  private readonly oldestSummariesStmt: Database.Statement;
  private readonly oldestRareStmt: Database.Statement;
  private readonly deleteSummariesUpToStmt: Database.Statement;
  private readonly deleteRareUpToStmt: Database.Statement;
  private readonly putCheckpointStmt: Database.Statement;
  private readonly getCheckpointStmt: Database.Statement;
  private readonly deleteCheckpointStmt: Database.Statement;
  private readonly prefixCheckpointStmt: Database.Statement;
  private readonly putMetaStmt: Database.Statement;
  private readonly appendTx: (items: EncodedItem[], checkpoint?: CheckpointEntries) => AppendResult;
  private readonly ackTx: (seqs: readonly number[]) => void;

  // In-memory mirrors of the table, recomputed at open (one scan, which also reads every page of the table
  // and so detects a corrupt file before we accept data into it).
  private lastSeq = 0;
  private readonly count = emptyByKind();
  private readonly bytesByKind = emptyByKind();
  private readonly dropped = emptyByKind();
  private rejected = 0;
  private writeErrors = 0;
  private writeErrorsPersisted = 0;
  private lastErrorLog = Number.NEGATIVE_INFINITY;
  private suppressedErrors = 0;
  private readonly clock: Clock;
  private closed = false;

  /** `new SqliteOutbox({ path, ...opts })`; throws STORE_WRITE_FAILED when the file cannot be opened/created. */
  static open(path: string, opts: Omit<SqliteOutboxOptions, 'path'> = {}): SqliteOutbox {
    return new SqliteOutbox({ ...opts, path });
  }

  constructor(opts: SqliteOutboxOptions) {
    this.path = opts.path;
    this.log = opts.log ?? nullLogger();
    this.clock = opts.clock ?? systemClock;
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    this.onFull = opts.onFull ?? DEFAULT_ON_FULL;
    const sync = opts.synchronous ?? 'normal';

    let db: Database.Database;
    try {
      db = this.openDb(sync, opts.pageSize ?? 4096, opts.walAutocheckpointBytes ?? 40 * 1024 * 1024);
    } catch (e) {
      if (!isCorruption(e) || this.path === ':memory:') throw this.openError(e);
      this.movedAside = this.moveAside(e);
      try {
        db = this.openDb(sync, opts.pageSize ?? 4096, opts.walAutocheckpointBytes ?? 40 * 1024 * 1024);
      } catch (e2) {
        throw this.openError(e2);
      }
    }
    this.db = db;

    this.insertStmt = db.prepare(
      'INSERT INTO outbox_v1 (seq, kind, id, rev, ts, body, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.peekSummariesStmt = db
      .prepare(`SELECT ${COLS} FROM outbox_v1 WHERE seq > ? AND kind = 2 ORDER BY seq LIMIT ?`)
      .raw(true);
    // `kind <> 2` repeats the partial index's WHERE so the planner may use it.
    this.peekRareStmt = db
      .prepare(`SELECT ${COLS} FROM outbox_v1 WHERE kind = ? AND kind <> 2 AND seq > ? ORDER BY seq LIMIT ?`)
      .raw(true);
    this.ackStmt = db.prepare('DELETE FROM outbox_v1 WHERE seq = ? RETURNING kind, bytes').raw(true);
    this.ackRangeStmt = db
      .prepare('DELETE FROM outbox_v1 WHERE seq BETWEEN ? AND ? RETURNING kind, bytes')
      .raw(true);
    this.oldestSummariesStmt = db
      .prepare('SELECT seq, bytes FROM outbox_v1 WHERE kind = 2 ORDER BY seq')
      .raw(true);
    this.oldestRareStmt = db
      .prepare('SELECT seq, bytes FROM outbox_v1 WHERE kind = ? AND kind <> 2 ORDER BY seq')
      .raw(true);
    this.deleteSummariesUpToStmt = db.prepare('DELETE FROM outbox_v1 WHERE seq <= ? AND kind = 2');
    this.deleteRareUpToStmt = db.prepare('DELETE FROM outbox_v1 WHERE kind = ? AND kind <> 2 AND seq <= ?');
    this.putCheckpointStmt = db.prepare(
      'INSERT INTO checkpoint_v1 (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.getCheckpointStmt = db.prepare('SELECT value FROM checkpoint_v1 WHERE key = ?').pluck(true);
    this.deleteCheckpointStmt = db.prepare('DELETE FROM checkpoint_v1 WHERE key = ?');
    // substr, not LIKE: keys may hold % and _ (device names).
    this.prefixCheckpointStmt = db
      .prepare('SELECT key, value FROM checkpoint_v1 WHERE substr(key, 1, length(@p)) = @p ORDER BY key')
      .raw(true);
    this.putMetaStmt = db.prepare(
      'INSERT INTO meta_v1 (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.appendTx = db.transaction((items: EncodedItem[], checkpoint?: CheckpointEntries) =>
      this.appendInTx(items, checkpoint),
    );
    this.ackTx = db.transaction((seqs: readonly number[]) => this.ackInTx(seqs));
  }

  append(items: readonly OutboxItem[], checkpoint?: CheckpointEntries): AppendResult {
    this.assertOpen();
    const encoded = items.map(encodeItem); // TypeError on a non-serialisable body: a bug, thrown
    // Snapshot what the transaction mutates, so a rollback leaves the mirrors untouched.
    const before = this.snapshot();
    try {
      const res = this.appendTx(encoded, checkpoint);
      this.writeErrorsPersisted = this.writeErrors;
      return res;
    } catch (e) {
      this.restore(before);
      if (!isStorageError(e)) throw e;
      this.writeErrors++;
      const err = new EdgeflowError(
        'STORE_WRITE_FAILED',
        `outbox append failed (${sqliteCode(e)}): nothing stored`,
        {
          cause: e,
        },
      );
      this.logWriteError(err, 'append');
      this.reclaimWal();
      return { appended: 0, dropped: 0, rejected: 0, error: err };
    }
  }

  /**
   * After a failed write (disk full): move the WAL into the database and truncate it. With
   * wal_autocheckpoint at ~40 MB the WAL alone can fill a small partition, and SQLite checkpoints only
   * after a successful commit, so without this a full disk stays full for the outbox even after space is
   * freed (found by test/agent/storage.test.ts, 1 MB tmpfs). Best effort: it fails too while the disk is full.
   */
  private reclaimWal(): void {
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {}
  }

  peek(kind: OutboxKind, limit: number, afterSeq = 0): StoredItem[] {
    this.assertOpen();
    if (limit <= 0) return [];
    const rows = (
      kind === 'summaries'
        ? this.peekSummariesStmt.all(afterSeq, limit)
        : this.peekRareStmt.all(KIND_CODE[kind], afterSeq, limit)
    ) as Row[];
    return rows.map((r) => new SqliteStoredItem(kind, r[0], r[1], r[2], r[3], r[4], r[5]));
  }

  ack(seqs: readonly number[]): void {
    this.assertOpen();
    if (seqs.length === 0) return;
    const before = this.snapshot();
    try {
      this.ackTx(seqs);
      this.writeErrorsPersisted = this.writeErrors;
    } catch (e) {
      this.restore(before);
      if (!isStorageError(e)) throw e;
      // The items stay and are sent again later: a duplicate downstream (de-duplicated by id+rev), no loss.
      this.writeErrors++;
      this.logWriteError(
        new EdgeflowError('STORE_WRITE_FAILED', `outbox ack failed (${sqliteCode(e)})`, { cause: e }),
        'ack',
      );
    }
  }

  readCheckpoint(key: string): string | undefined {
    this.assertOpen();
    return this.getCheckpointStmt.get(key) as string | undefined;
  }

  readCheckpoints(prefix: string): [string, string][] {
    this.assertOpen();
    return this.prefixCheckpointStmt.all({ p: prefix }) as [string, string][];
  }

  stats(): OutboxStats {
    this.assertOpen();
    // Oldest = earliest event time among the head item of each kind (the oldest queued); an item queued
    // later with an older ts is not seen — good enough for "how far behind are we" and O(1).
    let oldestTs: number | null = null;
    for (const kind of KINDS) {
      if (this.count[kind] === 0) continue;
      const head = this.peek(kind, 1)[0];
      if (head && (oldestTs === null || head.ts < oldestTs)) oldestTs = head.ts;
    }
    return {
      items: this.count.summaries + this.count.alerts + this.count.late,
      bytes: this.totalBytes(),
      oldestTs,
      byKind: { ...this.count },
      bytesByKind: { ...this.bytesByKind },
      dropped: { ...this.dropped },
      rejected: this.rejected,
      writeErrors: this.writeErrors,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.writeErrors !== this.writeErrorsPersisted)
        this.putMetaStmt.run('writeErrors', this.writeErrors);
    } catch {
      // best effort: the disk may still be full
    }
    this.db.close();
  }

  // ---- internals ----

  private openDb(sync: 'normal' | 'full', pageSize: number, walBytes: number): Database.Database {
    if (this.path !== ':memory:') {
      try {
        mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 }); // owner-only (issue 12)
      } catch (e) {
        throw new EdgeflowError(
          'STORE_WRITE_FAILED',
          `cannot create the data directory ${dirname(this.path)} (${sqliteCode(e)})`,
          {
            cause: e,
            retriable: false,
          },
        );
      }
    }
    const db = openDatabase(this.path);
    try {
      // Page size of a new file (must precede the first write). 4 KB: measured against 8/16 KB with the
      // full append+drain path, CPU per item is within ~5 % but larger pages write 30 % more bytes per
      // item (flash wear on gateways): 608 vs 815 B/item appended, 729 vs 970 B/item drained.
      db.pragma(`page_size = ${pageSize}`);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
      // Checkpoint every ~40 MB of WAL instead of SQLite's 1000 pages: each checkpoint fsyncs the database
      // file even with synchronous=NORMAL, and at 100k+ items/s the default made them the bottleneck
      // (bench/outbox.ts: ~140k -> ~200k rows/s raw). A drained backlog's WAL is truncated back to 64 MB.
      const actualPageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`wal_autocheckpoint = ${Math.max(16, Math.round(walBytes / actualPageSize))}`);
      db.pragma('journal_size_limit = 67108864');
      // SQLite's default 2 MB page cache (was 16 MB). The file's pages stay in the kernel's page cache
      // anyway; SQLite's own copy is process RSS. Issue 14 (bench/footprint.ts, x64 executable, 10k keys,
      // outbox growing with no uplink): malloc'd memory 52-65 -> 40 MiB; bench/outbox.ts same run, load
      // 13-17: append 197.5k -> 211.9k items per CPU-second, drain 418k -> 445k, bytes written per item
      // unchanged (836 / 622).
      db.pragma('cache_size = -2000');
      db.exec(SCHEMA);
      this.loadState(db);
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  private loadState(db: Database.Database): void {
    const rows = db
      .prepare('SELECT kind, count(*), total(bytes) FROM outbox_v1 GROUP BY kind')
      .raw(true)
      .all() as [number, number, number][];
    for (const [code, n, b] of rows) {
      const kind = CODE_KIND[code];
      if (!kind)
        throw Object.assign(new Error(`outbox_v1 holds unknown kind ${code}`), { code: 'SQLITE_CORRUPT' });
      this.count[kind] = n;
      this.bytesByKind[kind] = b;
    }
    const maxSeq = (db.prepare('SELECT max(seq) FROM outbox_v1').pluck(true).get() as number | null) ?? 0;
    const meta = new Map(
      (db.prepare('SELECT key, value FROM meta_v1').raw(true).all() as [string, number][]).map(([k, v]) => [
        k,
        v,
      ]),
    );
    // Seqs are never reused, also after everything was acked and the process restarted: the uplink's
    // "after this seq" cursor depends on it.
    this.lastSeq = Math.max(maxSeq, meta.get('lastSeq') ?? 0);
    this.dropped.summaries = meta.get('dropped.summaries') ?? 0;
    this.dropped.late = meta.get('dropped.late') ?? 0;
    this.dropped.alerts = meta.get('dropped.alerts') ?? 0;
    this.rejected = meta.get('rejected') ?? 0;
    this.writeErrors = meta.get('writeErrors') ?? 0;
    this.writeErrorsPersisted = this.writeErrors;
  }

  private appendInTx(items: EncodedItem[], checkpoint?: CheckpointEntries): AppendResult {
    const plan = planAppend(items, this.bytesByKind, this.maxBytes, this.onFull);
    let dropped = 0;
    for (const kind of ['summaries', 'late'] as const) {
      if (plan.freeStored[kind] > 0) dropped += this.freeOldest(kind, plan.freeStored[kind]);
      dropped += plan.droppedNew[kind];
      this.dropped[kind] += plan.droppedNew[kind];
    }
    let appended = 0;
    for (let i = 0; i < items.length; i++) {
      if (!plan.store[i]) continue;
      const it = items[i]!;
      this.insertStmt.run(++this.lastSeq, KIND_CODE[it.kind], it.id, it.rev, it.ts, it.json, it.bytes);
      this.count[it.kind]++;
      this.bytesByKind[it.kind] += it.bytes;
      appended++;
    }
    if (checkpoint)
      for (const [k, v] of checkpoint) {
        if (v === null) this.deleteCheckpointStmt.run(k);
        else this.putCheckpointStmt.run(k, v);
      }
    if (appended > 0) this.putMetaStmt.run('lastSeq', this.lastSeq);
    if (dropped > 0) {
      this.putMetaStmt.run('dropped.summaries', this.dropped.summaries);
      this.putMetaStmt.run('dropped.late', this.dropped.late);
    }
    if (plan.rejected > 0) {
      this.rejected += plan.rejected;
      this.putMetaStmt.run('rejected', this.rejected);
    }
    if (this.writeErrors !== this.writeErrorsPersisted) this.putMetaStmt.run('writeErrors', this.writeErrors);
    return { appended, dropped, rejected: plan.rejected, lastSeq: this.lastSeq };
  }

  /** Deletes the oldest stored items of `kind` until at least `bytes` are freed; returns how many. */
  private freeOldest(kind: 'summaries' | 'late', bytes: number): number {
    let freed = 0;
    let n = 0;
    let upTo = 0;
    const rows = (
      kind === 'summaries' ? this.oldestSummariesStmt.iterate() : this.oldestRareStmt.iterate(KIND_CODE[kind])
    ) as IterableIterator<[number, number]>;
    for (const [seq, b] of rows) {
      freed += b;
      n++;
      upTo = seq;
      if (freed >= bytes) break; // for..of calls return(): the statement is reset
    }
    if (n === 0) return 0;
    if (kind === 'summaries') this.deleteSummariesUpToStmt.run(upTo);
    else this.deleteRareUpToStmt.run(KIND_CODE[kind], upTo);
    this.count[kind] -= n;
    this.bytesByKind[kind] -= freed;
    this.dropped[kind] += n;
    return n;
  }

  private ackInTx(seqs: readonly number[]): void {
    // A batch is usually a contiguous run of seqs: one range DELETE instead of one statement per item.
    // Only exact runs (last - first + 1 === length, strictly increasing) take that path, so a range never
    // covers a seq that was not acknowledged.
    const first = seqs[0]!;
    const last = seqs[seqs.length - 1]!;
    let contiguous = last - first + 1 === seqs.length;
    for (let i = 1; contiguous && i < seqs.length; i++) contiguous = seqs[i] === first + i;
    const rows = contiguous
      ? (this.ackRangeStmt.all(first, last) as [number, number][])
      : seqs.map((seq) => this.ackStmt.get(seq) as [number, number] | undefined);
    for (const r of rows) {
      if (!r) continue; // already acked, or dropped by the size policy while in flight
      const kind = CODE_KIND[r[0]]!;
      this.count[kind]--;
      this.bytesByKind[kind] -= r[1];
    }
    if (this.writeErrors !== this.writeErrorsPersisted) this.putMetaStmt.run('writeErrors', this.writeErrors);
  }

  private snapshot() {
    return {
      lastSeq: this.lastSeq,
      count: { ...this.count },
      bytes: { ...this.bytesByKind },
      dropped: { ...this.dropped },
      rejected: this.rejected,
    };
  }

  private restore(s: ReturnType<SqliteOutbox['snapshot']>): void {
    this.lastSeq = s.lastSeq;
    Object.assign(this.count, s.count);
    Object.assign(this.bytesByKind, s.bytes);
    Object.assign(this.dropped, s.dropped);
    this.rejected = s.rejected;
  }

  private totalBytes(): number {
    return this.bytesByKind.summaries + this.bytesByKind.alerts + this.bytesByKind.late;
  }

  private moveAside(cause: unknown): string {
    const target = `${this.path}.corrupt-${new Date(this.clock.now()).toISOString().replace(/[:.]/g, '-')}`;
    renameSync(this.path, target);
    // The WAL belongs to the corrupt file: keep it beside it for a post-mortem; the -shm index is rebuilt.
    for (const [suffix, keep] of [
      ['-wal', true],
      ['-shm', false],
    ] as const) {
      try {
        if (keep) renameSync(this.path + suffix, target + suffix);
        else rmSync(this.path + suffix, { force: true });
      } catch {
        // absent: fine
      }
    }
    // ERROR: everything queued in that file is lost to this agent (STYLE.md log levels).
    this.log.error(
      {
        code: 'STORE_CORRUPT',
        path: this.path,
        movedTo: target,
        sqlite: sqliteCode(cause),
        err: (cause as Error).message,
      },
      'outbox database is corrupt or not a database: moved aside, starting with an empty outbox (queued items in it are not sent)',
    );
    return target;
  }

  private openError(e: unknown): Error {
    if (e instanceof EdgeflowError) return e;
    if (isStorageError(e) || isCorruption(e)) {
      const code = sqliteCode(e);
      return new EdgeflowError(
        'STORE_WRITE_FAILED',
        `cannot open outbox database ${this.path} (${code}): the data directory must exist and be writable by the agent`,
        { cause: e, retriable: false },
      );
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  private logWriteError(err: EdgeflowError, op: string): void {
    // Bounded rate: a full disk fails every append; one line per 10 s with the count of the others.
    const now = this.clock.monotonic();
    if (now - this.lastErrorLog < 10_000) {
      this.suppressedErrors++;
      return;
    }
    this.log.error(
      {
        code: err.code,
        op,
        path: this.path,
        writeErrors: this.writeErrors,
        suppressed: this.suppressedErrors,
        err: err.message,
      },
      'outbox write failed (disk full or I/O error); the caller keeps its data and retries',
    );
    this.lastErrorLog = now;
    this.suppressedErrors = 0;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('outbox is closed');
  }
}
