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
import Database from 'better-sqlite3';

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
