// Fleet state that must survive a collector restart (issue 15): the version counter, the rollouts and
// every agent's desired document and last report. One SQLite file beside the spool (`fleet.db` in
// collector.dataDir), rows as JSON: the state is small (one row per agent) and read whole at start.
// Writes are grouped per turn of the event loop: 1,000 reports arriving together are one transaction.
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { openDatabase } from '../../shared/sqlite.ts';

export class FleetStore {
  private readonly db: Database.Database;
  private readonly dirty = new Map<
    string,
    { table: 'agents' | 'rollouts' | 'meta'; key: string; value: unknown }
  >();
  private scheduled = false;

  constructor(dataDir: string) {
    this.db = openDatabase(join(dataDir, 'fleet.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    for (const t of ['meta', 'agents', 'rollouts'])
      this.db.exec(`CREATE TABLE IF NOT EXISTS fleet_${t}_v1 (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  }

  all<T>(table: 'agents' | 'rollouts' | 'meta'): Map<string, T> {
    const rows = this.db.prepare(`SELECT key, value FROM fleet_${table}_v1`).all() as {
      key: string;
      value: string;
    }[];
    return new Map(rows.map((r) => [r.key, JSON.parse(r.value) as T]));
  }

  put(table: 'agents' | 'rollouts' | 'meta', key: string, value: unknown): void {
    this.dirty.set(`${table}\0${key}`, { table, key, value });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.dirty.size === 0) return;
    const rows = [...this.dirty.values()];
    this.dirty.clear();
    const stmts = {
      agents: this.db.prepare('INSERT OR REPLACE INTO fleet_agents_v1 (key, value) VALUES (?, ?)'),
      rollouts: this.db.prepare('INSERT OR REPLACE INTO fleet_rollouts_v1 (key, value) VALUES (?, ?)'),
      meta: this.db.prepare('INSERT OR REPLACE INTO fleet_meta_v1 (key, value) VALUES (?, ?)'),
    };
    this.db.transaction(() => {
      for (const r of rows) stmts[r.table].run(r.key, JSON.stringify(r.value));
    })();
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}
