// Spool and outbox files are owner-only (issue 12, item 12): 0600 files, 0700 directories.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from './sqlite.ts';

const mode = (p: string) => statSync(p).mode & 0o777;

test('a new database and its WAL files are 0600; an existing 0644 one is tightened', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-sqlite-'));
  const path = join(dir, 'new.db');
  const db = openDatabase(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
  for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(f), 0o600, f);
  db.close();
  const old = join(dir, 'old.db');
  writeFileSync(old, '');
  chmodSync(old, 0o644);
  openDatabase(old).close();
  assert.equal(mode(old), 0o600);
});

test('readonly and fileMustExist opens create nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-sqlite-'));
  assert.throws(() => openDatabase(join(dir, 'absent.db'), { fileMustExist: true }));
  assert.throws(() => openDatabase(join(dir, 'absent.db'), { readonly: true, fileMustExist: true }));
});
