// Opens better-sqlite3 databases: the one place the project does, so the SQLite library is chosen here.
//
// better-sqlite3 13 (Node-API, prebuilt in its npm package) needs nothing more. Version 12 wrapped its
// objects in node::ObjectWrap and aborted on Node 24 (SIGABRT, "(env) != nullptr") when a statement was
// collected during process.exit() or inside a vm context; this module used to close every database on
// exit to avoid it (docs/design/binaries.md has the history; issue 18 removed the workaround).
import Database from 'better-sqlite3';

export function openDatabase(path: string, options?: Database.Options): Database.Database {
  return new Database(path, options);
}
