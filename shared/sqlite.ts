// Opens better-sqlite3 databases, and closes whichever are still open when the process exits.
//
// Why: on Node 24 (the agent's executables) better-sqlite3 12.x aborts the process — SIGABRT, exit 134,
// "Assertion failed: (env) != nullptr" in node::RemoveEnvironmentCleanupHook from Statement::~Statement —
// when process.exit() runs while a database is open and some of its prepared statements (every
// db.pragma() makes one) are garbage not yet collected: their destructors then run during the
// environment's teardown. Reproduced here with Node 24.21 and 12.11.1; closing the database first
// avoids it. A fatal error's `exit 1` or a config error's `exit 2` would otherwise become an abort and a
// core dump. better-sqlite3 13 (Node-API) does not have the problem but needs Node-API 10 (Node >= 22),
// and the code also runs on Node 20 (its prebuilt binary segfaults there).
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Spool and outbox hold every reading and alert: owner-only (issue 12, item 12; they were 0644 under
 * the usual umask). SQLite creates its -wal and -shm files with the main file's mode, so creating the
 * main file 0600 before SQLite does covers all three; files from older versions are tightened here.
 */
const PRIVATE_FILE = 0o600;

function makePrivate(path: string, create: boolean): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  if (!existsSync(path)) {
    if (!create) return; // fileMustExist: SQLite reports it
    closeSync(openSync(path, 'a', PRIVATE_FILE));
  }
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(f, PRIVATE_FILE);
    } catch {
      // -wal/-shm absent (no WAL yet), or not ours to change: SQLite reports what matters on open
    }
  }
}

const openDatabases = new Set<WeakRef<Database.Database>>();
let hooked = false;

function closeAll(): void {
  for (const ref of openDatabases) {
    const db = ref.deref();
    try {
      if (db?.open) db.close();
    } catch {
      // Exiting anyway; a database that cannot close (a statement mid-iteration) is left to the OS,
      // as it would be without this hook. WAL keeps it consistent.
    }
  }
  openDatabases.clear();
}

export function openDatabase(path: string, options?: Database.Options): Database.Database {
  if (!options?.readonly) makePrivate(path, !options?.fileMustExist);
  const db = new Database(path, options);
  if (!hooked) {
    process.on('exit', closeAll);
    hooked = true;
  }
  if (openDatabases.size >= 256) {
    for (const ref of openDatabases) if (!ref.deref()?.open) openDatabases.delete(ref);
  }
  openDatabases.add(new WeakRef(db));
  return db;
}
