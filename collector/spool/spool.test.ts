import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../shared/sqlite.ts';
import { SPOOL_BOUNDS_SQL, Spool, type SpoolEntry, type SpoolItem, SpoolReader } from './spool.ts';

const OPTS = {
  maxBytes: 1 << 30,
  sinks: ['kafka', 'influx'],
  dedupRetentionMs: 86_400_000,
  dedupMaxRows: 1000,
};

function entry(id: string, rev = 0, agent = 'gw-1'): SpoolEntry {
  return {
    kind: 'summaries',
    agent,
    itemId: id,
    rev,
    device: 'd1',
    body: Buffer.from(JSON.stringify({ id, rev })),
  };
}

test('append is de-duplicated on (agent, id, rev); a new rev or another agent is new', () => {
  const s = new Spool(':memory:', OPTS);
  assert.deepEqual(s.append([entry('a'), entry('b')]), { stored: 2, duplicates: 0 });
  assert.deepEqual(s.append([entry('a'), entry('b'), entry('a', 1), entry('a', 0, 'gw-2')]), {
    stored: 2,
    duplicates: 2,
  });
  assert.deepEqual(
    s.read('kafka', 100).map((i) => `${i.agent}/${i.itemId}#${i.rev}`),
    ['gw-1/a#0', 'gw-1/b#0', 'gw-1/a#1', 'gw-2/a#0'],
  );
  s.close();
});

test('duplicates inside one batch are stored once', () => {
  const s = new Spool(':memory:', OPTS);
  assert.deepEqual(s.append([entry('a'), entry('a')]), { stored: 1, duplicates: 1 });
});

test('each sink has its own cursor; items go only when every cursor passed them', () => {
  const s = new Spool(':memory:', OPTS);
  // Three publishes, three rows: space is freed per row (a batch's items share one, see the next tests).
  for (const id of ['a', 'b', 'c']) s.append([entry(id)]);
  const k = s.read('kafka', 2);
  assert.deepEqual(
    k.map((i) => i.itemId),
    ['a', 'b'],
  );
  s.advance('kafka', k[1]!.seq);
  assert.deepEqual(
    s.read('kafka', 10).map((i) => i.itemId),
    ['c'],
  );
  assert.deepEqual(
    s.read('influx', 10).map((i) => i.itemId),
    ['a', 'b', 'c'],
    'influx is not moved by kafka',
  );
  assert.equal(s.depth('kafka').items, 1);
  assert.equal(s.depth('influx').items, 3);
  const before = s.sizeBytes;
  s.advance('influx', k[0]!.seq);
  assert.ok(s.sizeBytes < before, 'item a is deleted once both cursors passed it');
  assert.deepEqual(
    s.read('influx', 10).map((i) => i.itemId),
    ['b', 'c'],
  );
  s.advance('influx', k[0]!.seq - 1);
  assert.deepEqual(
    s.read('influx', 10).map((i) => i.itemId),
    ['b', 'c'],
    'cursors never go back',
  );
});

test('cursors, items, dedup and size survive reopening the file', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'edgeflow-spool-')), 'spool.db');
  const s1 = new Spool(path, OPTS);
  s1.append([entry('a'), entry('b')]);
  s1.advance('kafka', s1.read('kafka', 1)[0]!.seq);
  const bytes = s1.sizeBytes;
  s1.close();
  const s2 = new Spool(path, OPTS);
  assert.equal(s2.sizeBytes, bytes);
  assert.deepEqual(
    s2.read('kafka', 10).map((i) => i.itemId),
    ['b'],
  );
  assert.deepEqual(
    s2.read('influx', 10).map((i) => i.itemId),
    ['a', 'b'],
  );
  assert.deepEqual(s2.append([entry('a')]), { stored: 0, duplicates: 1 });
  s2.close();
});

test('isFull at maxBytes; draining a sink frees space and emits drain', () => {
  const s = new Spool(':memory:', { ...OPTS, sinks: ['kafka'], maxBytes: 500 });
  let drains = 0;
  s.on('drain', () => drains++);
  for (let i = 0; i < 10 && !s.isFull(); i++) s.append([entry(`i${i}`)]);
  assert.equal(s.isFull(), true);
  const items = s.read('kafka', 100);
  s.advance('kafka', items.at(-1)!.seq);
  assert.equal(s.isFull(), false);
  assert.equal(s.sizeBytes, 0);
  assert.equal(drains, 1);
});

test('with no sinks configured nothing is kept', () => {
  const s = new Spool(':memory:', { ...OPTS, sinks: [] });
  s.append([entry('a')]);
  assert.equal(s.sizeBytes, 0);
  assert.deepEqual(
    s.append([entry('a')]),
    { stored: 0, duplicates: 1 },
    'but the dedup index still remembers',
  );
});

test('the dedup index is pruned by age and by row count', () => {
  let now = 1_000_000;
  const s = new Spool(':memory:', { ...OPTS, dedupRetentionMs: 10_000, dedupMaxRows: 1000, now: () => now });
  s.append([entry('old')]);
  now += 20_000;
  for (let i = 0; i < 15; i++) {
    s.append(Array.from({ length: 100 }, (_, j) => entry(`n${i}-${j}`)));
    now += 1;
  }
  assert.equal(s.dedupSize(), 1501);
  s.pruneDedup();
  assert.ok(s.dedupSize() <= 1000 && s.dedupSize() >= 900, `size ${s.dedupSize()}`);
  assert.deepEqual(s.append([entry('old')]), { stored: 1, duplicates: 0 }, 'an expired entry is forgotten');
  assert.deepEqual(s.append([entry('n14-5')]), { stored: 0, duplicates: 1 }, 'recent entries are kept');
});

test('a spool from before dedup_v2: its dedup_v1 keys still count until pruned, then the table goes', () => {
  let now = 1_000_000;
  const db = openDatabase(':memory:');
  db.exec(
    'CREATE TABLE dedup_v1 (agent TEXT NOT NULL, key TEXT NOT NULL, seen_at INTEGER NOT NULL, PRIMARY KEY (agent, key)) WITHOUT ROWID',
  );
  db.prepare('INSERT INTO dedup_v1 VALUES (?, ?, ?)').run('gw-1', 'a#0', now);
  const s = new Spool(db, { ...OPTS, dedupRetentionMs: 10_000, now: () => now });
  assert.deepEqual(s.append([{ ...entry('a'), dedupTime: 5 }]), { stored: 0, duplicates: 1 });
  assert.deepEqual(s.append([entry('b')]), { stored: 1, duplicates: 0 });
  now += 20_000;
  s.pruneDedup();
  const legacy = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'dedup_v1'").get();
  assert.equal(legacy, undefined, 'dropped once empty');
  assert.deepEqual(s.append([entry('c')]), { stored: 1, duplicates: 0 });
});

test('the dedup index is ordered by item time: a re-sent item (same time) is found, among many', () => {
  const s = new Spool(':memory:', { ...OPTS, dedupMaxRows: 100_000 });
  const at = (id: string, t: number): SpoolEntry => ({ ...entry(id), dedupTime: t });
  for (let b = 0; b < 20; b++)
    s.append(Array.from({ length: 100 }, (_, i) => at(`k${b}-${i}`, 1_000 * b + (i % 10))));
  assert.deepEqual(s.append([at('k3-7', 3_007), at('k19-99', 19_009)]), { stored: 0, duplicates: 2 });
  assert.deepEqual(s.append([at('k3-8', 3_008), at('new', 3_008)]), { stored: 1, duplicates: 1 });
});

test('dead letters without a dedup key are always stored', () => {
  const s = new Spool(':memory:', OPTS);
  const dl: SpoolEntry = {
    kind: 'deadletter',
    agent: 'gw-1',
    itemId: null,
    rev: 0,
    device: null,
    body: Buffer.from('x'),
    error: 'json: bad',
  };
  assert.equal(s.append([dl, dl]).stored, 2);
  const [a] = s.read('kafka', 1);
  assert.equal(a?.error, 'json: bad');
  assert.equal(a?.body.toString(), 'x');
});

test('depth counts what a sink has not passed, also for a sink added after rows were deleted', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'edgeflow-spool-')), 'spool.db');
  let now = 1000;
  const s1 = new Spool(path, { ...OPTS, sinks: ['kafka'], now: () => now });
  for (const id of ['a', 'b', 'c']) s1.append([entry(id)]); // a row each
  s1.advance('kafka', s1.read('kafka', 2).at(-1)!.seq); // a, b deleted
  now = 2000;
  s1.append([entry('d'), entry('a')]); // a is a duplicate: no row, no gap
  assert.deepEqual(s1.depth('kafka'), { items: 2, oldestReceivedAt: 1000 });
  s1.close();
  const s2 = new Spool(path, { ...OPTS, sinks: ['kafka', 'influx'] });
  assert.deepEqual(
    s2.depth('influx'),
    { items: 2, oldestReceivedAt: 1000 },
    'new sink: cursor 0, only c and d remain',
  );
  s2.advance('influx', s2.read('influx', 10).at(-1)!.seq);
  assert.deepEqual(s2.depth('influx'), { items: 0, oldestReceivedAt: null });
  s2.close();
});

test('depth bounds are index seeks, not a scan of the backlog (MIN and MAX in one SELECT scan the table)', () => {
  const db = openDatabase(':memory:');
  new Spool(db, OPTS); // creates the schema
  const plan = (sql: string) =>
    (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail);
  assert.ok(
    plan('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM items_v2').some((d) => d.startsWith('SCAN items_v2')),
    'the test can fail: the single-SELECT form scans',
  );
  const bounds = plan(SPOOL_BOUNDS_SQL);
  assert.ok(!bounds.some((d) => d.startsWith('SCAN items_v2')), bounds.join(' | '));
  assert.ok(bounds.filter((d) => d.startsWith('SEARCH items_v2')).length >= 2, bounds.join(' | '));
  db.close();
});

/** What read() returns, without the memory-only `value`: cache and SQLite must agree on everything else. */
function plain(items: ReturnType<Spool['read']>) {
  return items.map(({ value: _v, ...rest }) => ({ ...rest, body: rest.body.toString('utf8') }));
}

test('recent-items cache: reads equal SQLite reads through appends, advances and a trimmed cache', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'spool-cache-')), 'a.db');
  const other = join(mkdtempSync(join(tmpdir(), 'spool-cache-')), 'b.db');
  const t = 1_700_000_000_000;
  const cached = new Spool(path, { ...OPTS, recentItems: 7, now: () => t });
  const uncached = new Spool(other, { ...OPTS, recentItems: 0, now: () => t });
  let n = 0;
  for (let round = 0; round < 12; round++) {
    const batch = Array.from({ length: (round % 4) + 1 }, () => {
      const e = entry(`item-${n++}`);
      e.value = JSON.parse(e.body.toString('utf8'));
      return e;
    });
    cached.appendGroup([batch.slice(0, 1), batch.slice(1)]);
    uncached.appendGroup([batch.slice(0, 1), batch.slice(1)]);
    for (const sink of ['kafka', 'influx']) {
      const limit = sink === 'kafka' ? 3 : 2; // the two cursors drift apart, in and out of the cache
      const a = cached.read(sink, limit);
      const b = uncached.read(sink, limit);
      assert.deepEqual(plain(a), plain(b), `round ${round} ${sink}`);
      for (const it of a)
        if (it.value !== undefined) assert.deepEqual(it.value, JSON.parse(it.body.toString()));
      if (a.length > 0 && round % 3 !== 2) {
        cached.advance(sink, a.at(-1)!.seq);
        uncached.advance(sink, b.at(-1)!.seq);
      }
    }
  }
  assert.equal(cached.sizeBytes, uncached.sizeBytes);
  assert.deepEqual(plain(cached.read('influx', 100)), plain(uncached.read('influx', 100)));
  cached.close();
  uncached.close();
});

test('recent-items cache: served with the parsed value; another writer on the same file disables it', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'spool-cache-')), 's.db');
  const s1 = new Spool(path, OPTS);
  const e = entry('a');
  e.value = { id: 'a', rev: 0 };
  s1.append([e]);
  const [a] = s1.read('kafka', 10);
  assert.deepEqual(a!.value, { id: 'a', rev: 0 }); // from the cache
  const s2 = new Spool(path, OPTS);
  s2.append([entry('b')]); // s1's cache does not know this row
  assert.deepEqual(
    s1.read('kafka', 10).map((i) => [i.itemId, i.value]),
    [
      ['a', undefined],
      ['b', undefined],
    ],
  );
  s2.close();
  s1.close();
});

test('a publish is one row of its items: reads across and inside rows, freed once every cursor passed the row', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'spool-rows-')), 's.db');
  const s = new Spool(path, { ...OPTS, recentItems: 0 }); // every read from SQLite
  const dl: SpoolEntry = {
    ...entry('x'),
    kind: 'deadletter',
    itemId: null,
    error: 'item: bad',
    dedupKey: null,
  };
  // a b c | x (dead letter, a row of its own) | d e: three rows, six items, seqs 1..6
  assert.deepEqual(s.append([entry('a'), entry('b'), entry('c'), dl, entry('d'), entry('e')]), {
    stored: 6,
    duplicates: 0,
  });
  s.append([entry('f'), entry('g')]);
  const reader = new SpoolReader(path);
  const ids = (items: SpoolItem[]) => items.map((i) => `${i.seq}:${i.itemId ?? i.kind}`);
  assert.deepEqual(ids(s.read('kafka', 2)), ['1:a', '2:b']);
  s.advance('kafka', 2); // inside the first row
  assert.deepEqual(ids(s.read('kafka', 3)), ['3:c', '4:deadletter', '5:d']);
  assert.deepEqual(ids(reader.read(2, 3)), ['3:c', '4:deadletter', '5:d'], 'the sink threads read the same');
  assert.deepEqual(ids(reader.read(5, 10)), ['6:e', '7:f', '8:g']);
  const [c] = s.read('kafka', 1);
  assert.deepEqual(JSON.parse(c!.body.toString()), { id: 'c', rev: 0 }, 'each item gets its own body back');
  assert.equal(c!.device, 'd1');
  assert.equal(s.depth('kafka').items, 6);
  assert.equal(reader.depth(2).items, 6);
  const full = s.sizeBytes;
  s.advance('influx', 2);
  assert.equal(s.sizeBytes, full, 'a row stays until every cursor passed all of its items');
  s.advance('influx', 3);
  s.advance('kafka', 4);
  assert.ok(s.sizeBytes < full, 'a b c and x are gone');
  assert.deepEqual(ids(s.read('kafka', 10)), ['5:d', '6:e', '7:f', '8:g']);
  assert.deepEqual(ids(s.read('influx', 10)), ['4:deadletter', '5:d', '6:e', '7:f', '8:g']);
  // A re-sent publish is de-duplicated item by item, as before.
  assert.deepEqual(s.append([entry('f'), entry('g'), entry('h')]), { stored: 1, duplicates: 2 });
  assert.deepEqual(ids(reader.read(8, 10)), ['9:h']);
  reader.close();
  s.close();
});

/** The previous version's tables (one row per item), as it created them. */
const V1_TABLES = `
    CREATE TABLE items_v1 (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, agent TEXT NOT NULL,
      item_id TEXT, rev INTEGER NOT NULL DEFAULT 0, device TEXT, body BLOB NOT NULL, error TEXT, topic TEXT,
      bytes INTEGER NOT NULL, received_at INTEGER NOT NULL);
    CREATE TABLE cursors_v1 (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
`;

test('a spool written before items_v2 (one row per item in items_v1) is migrated at open: nothing lost, seqs and cursors kept', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'spool-v1-')), 's.db');
  // The previous version's tables, as it created them, with 5 items of which the first 2 were delivered
  // to both sinks and deleted, and the influx cursor one item further.
  const db = openDatabase(path);
  db.exec(V1_TABLES);
  const ins = db.prepare(
    'INSERT INTO items_v1 (kind, agent, item_id, rev, device, body, error, topic, bytes, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
  );
  for (const id of ['a', 'b', 'c', 'd', 'e']) {
    const e = entry(id);
    ins.run(e.kind, e.agent, e.itemId, e.rev, e.device, e.body, null, 't/1', e.body.length + 64, 1000);
  }
  db.exec("DELETE FROM items_v1 WHERE seq <= 2; INSERT INTO cursors_v1 VALUES ('kafka', 2), ('influx', 3)");
  db.close();

  const s = new Spool(path, { ...OPTS, recentItems: 0 });
  const ids = (items: SpoolItem[]) => items.map((i) => `${i.seq}:${i.itemId}`);
  assert.deepEqual(ids(s.read('kafka', 10)), ['3:c', '4:d', '5:e']);
  assert.deepEqual(ids(s.read('influx', 10)), ['4:d', '5:e']);
  assert.equal(s.read('kafka', 1)[0]!.topic, 't/1');
  assert.equal(s.sizeBytes, 3 * (entry('c').body.length + 64));
  s.append([entry('f'), entry('g')]);
  assert.deepEqual(ids(s.read('influx', 10)), ['4:d', '5:e', '6:f', '7:g'], 'new items after the old ones');
  s.close();
  const check = openDatabase(path, { readonly: true });
  assert.equal(check.prepare("SELECT 1 FROM sqlite_master WHERE name = 'items_v1'").get(), undefined);
  check.close();

  // Everything delivered and deleted before the upgrade: new seqs still start after the old ones.
  const path2 = join(mkdtempSync(join(tmpdir(), 'spool-v1-')), 's.db');
  const db2 = openDatabase(path2);
  db2.exec(`
    ${V1_TABLES}
    INSERT INTO items_v1 (kind, agent, body, bytes, received_at) VALUES ('summaries', 'gw-1', x'7b7d', 66, 1), ('summaries', 'gw-1', x'7b7d', 66, 1);
    DELETE FROM items_v1;
    INSERT INTO cursors_v1 VALUES ('kafka', 2), ('influx', 2);
  `);
  db2.close();
  const s2 = new Spool(path2, { ...OPTS, recentItems: 0 });
  s2.append([entry('h')]);
  assert.deepEqual(ids(s2.read('kafka', 10)), ['3:h']);
  assert.deepEqual(ids(s2.read('influx', 10)), ['3:h']);
  s2.close();
});

test('a cursor move commits without its own fsync; appends stay synchronous=FULL', () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'spool-sync-')), 's.db'));
  const s = new Spool(db, OPTS);
  const sync = () => db.pragma('synchronous', { simple: true });
  assert.equal(sync(), 2, 'FULL');
  s.append([entry('a'), entry('b')]);
  s.advance('kafka', 2);
  assert.equal(sync(), 2, 'FULL again after the cursor move');
  s.advance('influx', 1);
  s.close();
});
