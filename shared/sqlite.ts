// Opens better-sqlite3 databases: the one place the project does, so the SQLite library is chosen here.
//
// better-sqlite3 13 (Node-API, prebuilt in its npm package) needs nothing more. Version 12 wrapped its
// objects in node::ObjectWrap and aborted on Node 24 (SIGABRT, "(env) != nullptr") when a statement was
// collected during process.exit() or inside a vm context; this module used to close every database on
// exit to avoid it (docs/design/binaries.md has the history; issue 18 removed the workaround).
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

export function openDatabase(path: string, options?: Database.Options): Database.Database {
  if (!options?.readonly) makePrivate(path, !options?.fileMustExist);
  return new Database(path, options);
}
