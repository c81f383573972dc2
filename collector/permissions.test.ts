// The collector's data directory and spool are owner-only (issue 12, item 12); the agent's outbox too.
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteOutbox } from '../agent/outbox/sqlite.ts';
import { startHarness } from './test-support/harness.ts';

const mode = (p: string) => statSync(p).mode & 0o777;

test('collector: dataDir 0700, spool.db and its WAL 0600', async () => {
  const h = await startHarness();
  try {
    const c = await h.connect('gw-1');
    await c.publishAsync('edgeflow/v1/gw-1/status', JSON.stringify({}), { qos: 1 });
    assert.equal(mode(h.dataDir), 0o700);
    for (const f of ['spool.db', 'spool.db-wal']) assert.equal(mode(join(h.dataDir, f)), 0o600, f);
  } finally {
    await h.stop();
  }
});

test('agent: the outbox directory it creates is 0700, the outbox 0600', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'edgeflow-perm-')), 'state');
  const outbox = new SqliteOutbox({ path: join(dir, 'outbox.db') });
  try {
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(join(dir, 'outbox.db')), 0o600);
  } finally {
    outbox.close();
  }
});
