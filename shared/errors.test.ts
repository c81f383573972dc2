import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EdgeflowError, ERROR_CODES } from './errors.ts';

test('docs/errors.md lists every code with its retriable flag and meaning, and nothing else', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  // Column padding is free (markdown formatters align tables); the cells are not.
  const rows = [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(yes|no)\s*\|\s*(.+?)\s*\|$/gm)].map((m) => ({
    code: m[1]!,
    retriable: m[2] === 'yes',
    doc: m[3]!,
  }));
  assert.deepEqual(
    rows,
    Object.entries(ERROR_CODES).map(([code, v]) => ({ code, retriable: v.retriable, doc: v.doc })),
  );
});

test('EdgeflowError carries code, retriable and cause', () => {
  const cause = new Error('ENOSPC');
  const e = new EdgeflowError('STORE_WRITE_FAILED', 'disk full', { cause });
  assert.equal(e.code, 'STORE_WRITE_FAILED');
  assert.equal(e.retriable, true);
  assert.equal(e.cause, cause);
  assert.equal(new EdgeflowError('CONFIG_INVALID', 'x').retriable, false);
});
