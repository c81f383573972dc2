import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../../shared/clock.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { item, outboxConformance } from './outbox.conformance.ts';
import { SqliteOutbox } from './sqlite.ts';

const root = mkdtempSync(join(tmpdir(), 'edgeflow-outbox-'));
let n = 0;
const freshPath = () => join(root, `t${++n}`, 'outbox.db');

outboxConformance('SqliteOutbox :memory:', (limits) => new SqliteOutbox({ path: ':memory:', ...limits }));
outboxConformance('SqliteOutbox file', (limits) => new SqliteOutbox({ path: freshPath(), ...limits }));
outboxConformance(
  'SqliteOutbox file, synchronous=full',
  (limits) => new SqliteOutbox({ path: freshPath(), synchronous: 'full', ...limits }),
);

/** A pino logger that keeps its lines, to assert on ERROR lines. */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, dest), lines };
}

describe('SqliteOutbox persistence', () => {
  it('restart: items, checkpoints, counters and the seq sequence survive close and reopen', () => {
    const path = freshPath();
    const one = 200;
    let o = new SqliteOutbox({ path, maxBytes: 10_000, onFull: 'reject-new' });
    o.append(
      [item('alerts', 1), ...Array.from({ length: 5 }, (_, i) => item('summaries', 10 + i))],
      new Map([['w', 'ck-1']]),
    );
    o.append(Array.from({ length: 200 }, (_, i) => item('summaries', 100 + i, { pad: one })));
    const head = o.peek('summaries', 2);
    o.ack(head.map((h) => h.seq));
    const before = o.stats();
    const maxSeq = Math.max(...o.peek('summaries', 1e6).map((s) => s.seq));
    assert.ok(before.rejected > 0, 'test setup: some items must be rejected');
    o.close();

    o = new SqliteOutbox({ path, maxBytes: 10_000, onFull: 'reject-new' });
    assert.deepEqual(o.stats(), before);
    assert.equal(o.readCheckpoint('w'), 'ck-1');
    assert.equal(o.peek('summaries', 1)[0]!.id, 'summaries-00000012');
    assert.equal(o.peek('alerts', 5).length, 1);
    o.ack([...o.peek('summaries', 1e6), ...o.peek('alerts', 10)].map((s) => s.seq));
    o.close();

    o = new SqliteOutbox({ path });
    assert.equal(o.stats().items, 0);
    o.append([item('summaries', 999)]);
    assert.ok(o.peek('summaries', 1)[0]!.seq > maxSeq, 'seq continues after restart with an empty outbox');
    o.close();
  });

  it('drop counters persist across restarts', () => {
    const path = freshPath();
    let o = new SqliteOutbox({ path, maxBytes: 1000, onFull: 'drop-oldest-summaries' });
    o.append(Array.from({ length: 50 }, (_, i) => item('summaries', i)));
    const d = o.stats().dropped.summaries;
    assert.ok(d > 0);
    o.close();
    o = new SqliteOutbox({ path, maxBytes: 1000, onFull: 'drop-oldest-summaries' });
    assert.equal(o.stats().dropped.summaries, d);
    o.close();
  });
});

describe('SqliteOutbox durability', () => {
  it('WAL + synchronous=NORMAL: every append that returned survives kill -9 of the process', async () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'crash-child.fixture.ts'), path],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let committed = 0;
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) committed = Math.max(committed, Number(l));
    });
    await waitFor('child committed 20k items', () => committed >= 20_000, { timeoutMs: 60_000 });
    child.kill('SIGKILL');
    await once(child, 'exit');
    const seen = committed; // every number printed was printed after append() returned
    const o = new SqliteOutbox({ path });
    const st = o.stats();
    assert.ok(st.items >= seen, `stored ${st.items} < acknowledged ${seen}`);
    assert.equal(st.items % 100, 0, 'no partial transaction');
    assert.equal(o.readCheckpoint('batch'), String(st.items / 100 - 1), 'checkpoint matches the items');
    o.close();
  });
});

describe('SqliteOutbox damaged files', () => {
  it('a file of garbage is moved aside with an ERROR line and a fresh outbox starts', () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, randomBytes(64 * 1024));
    const { log, lines } = captureLog();
    const o = new SqliteOutbox({ path, log, clock: new FakeClock(Date.UTC(2026, 0, 2, 3, 4, 5)) });
    assert.equal(o.movedAside, `${path}.corrupt-2026-01-02T03-04-05-000Z`);
    assert.ok(existsSync(o.movedAside!));
    assert.equal(statSync(o.movedAside!).size, 64 * 1024, 'the corrupt file is kept for a post-mortem');
    const err = lines.find((l) => l.level === 50);
    assert.ok(err, 'an ERROR line');
    assert.equal(err.code, 'STORE_CORRUPT');
    assert.equal(o.append([item('summaries', 1)]).appended, 1);
    o.close();
  });

  it('a database whose table pages are damaged is detected at open, not at the first peek', () => {
    const path = freshPath();
    const o1 = new SqliteOutbox({ path });
    o1.append(Array.from({ length: 3000 }, (_, i) => item('summaries', i, { pad: 100 })));
    o1.close();
    const size = statSync(path).size;
    assert.ok(size > 100 * 4096);
    const fd = openSync(path, 'r+');
    // keep page 1 (header + schema) intact, scribble over every other page
    for (let off = 4096; off < size; off += 4096) writeSync(fd, randomBytes(4096), 0, 4096, off);
    closeSync(fd);
    const o = new SqliteOutbox({ path });
    assert.ok(o.movedAside, 'moved aside');
    assert.equal(o.stats().items, 0);
    o.close();
  });

  it('a data dir that cannot be written is a clear STORE_WRITE_FAILED at open (fatal for the caller)', (t) => {
    const dir = join(root, `ro-${++n}`);
    mkdirSync(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
      execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' });
    } catch (e) {
      // Needs root (or CAP_SYS_ADMIN); chmod is no substitute because root ignores file modes.
      t.skip(`cannot mount a read-only tmpfs here: ${(e as Error).message.split('\n')[0]}`);
      console.log(`# skipped read-only data dir test: mount failed (not root?)`);
      return;
    }
    try {
      assert.throws(() => new SqliteOutbox({ path: join(dir, 'outbox.db') }), {
        code: 'STORE_WRITE_FAILED',
        retriable: false,
      });
      assert.throws(() => new SqliteOutbox({ path: join(dir, 'sub', 'outbox.db') }), {
        code: 'STORE_WRITE_FAILED',
      });
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('SqliteOutbox disk full', () => {
  it('SQLITE_FULL: append returns STORE_WRITE_FAILED, counts writeErrors, stores nothing; works again with space', (t) => {
    const dir = join(root, `full-${++n}`);
    mkdirSync(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (e) {
      t.skip(`cannot mount a 1 MB tmpfs here: ${(e as Error).message.split('\n')[0]}`);
      console.log('# skipped disk-full test: mount of a 1 MB tmpfs failed (not root?)');
      return;
    }
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(256 * 1024));
      const { log, lines } = captureLog();
      const path = join(dir, 'outbox.db');
      const o = new SqliteOutbox({ path, log });
      let stored = 0;
      let failed: ReturnType<SqliteOutbox['append']> | undefined;
      for (let i = 0; i < 1000 && !failed; i++) {
        const r = o.append(
          Array.from({ length: 20 }, (_, k) => item('summaries', i * 20 + k, { pad: 1000 })),
          new Map([['ck', String(i)]]),
        );
        if (r.error) failed = r;
        else stored += r.appended;
      }
      assert.ok(failed, 'the disk filled up');
      assert.equal(failed.error!.code, 'STORE_WRITE_FAILED');
      assert.equal(failed.error!.retriable, true);
      assert.equal(failed.appended, 0);
      assert.ok(stored > 0);
      // the failed transaction left nothing behind, its checkpoint included
      assert.equal(o.stats().items, stored);
      assert.equal(o.readCheckpoint('ck'), String(stored / 20 - 1));
      assert.equal(o.stats().writeErrors, 1);
      assert.ok(lines.some((l) => l.level === 50 && l.code === 'STORE_WRITE_FAILED'));
      // still readable
      assert.equal(o.peek('summaries', 5).length, 5);
      // space comes back: appends work again and the error count is persisted
      rmSync(join(dir, 'filler'));
      const again = o.append([item('summaries', 1e6)]);
      assert.equal(again.error, undefined);
      assert.equal(again.appended, 1);
      o.close();
      const o2 = new SqliteOutbox({ path });
      assert.equal(o2.stats().items, stored + 1);
      assert.equal(o2.stats().writeErrors, 1);
      o2.close();
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

// Keep the temp root tidy even when a test failed before its umount.
after(() => {
  for (const d of readdirSync(root)) {
    if (d.startsWith('ro-') || d.startsWith('full-')) {
      try {
        execFileSync('umount', [join(root, d)], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
    }
  }
  rmSync(root, { recursive: true, force: true });
});
