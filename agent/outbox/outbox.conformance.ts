// The one test suite every Outbox implementation must pass (STYLE.md: one conformance suite per interface,
// as Telegraf's buffer tests and aedes' persistence suite). Call it from a `*.test.ts` file:
//
//   outboxConformance('sqlite :memory:', (limits) => new SqliteOutbox({ path: ':memory:', ...limits }));
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Outbox, OutboxItem, OutboxKind, OutboxLimits } from './outbox.ts';
import { encodeItem } from './policy.ts';

export type MakeOutbox = (limits?: OutboxLimits) => Outbox | Promise<Outbox>;

export function item(
  kind: OutboxKind,
  n: number,
  opts: { ts?: number; pad?: number; rev?: number } = {},
): OutboxItem {
  const id = `${kind}-${String(n).padStart(8, '0')}`;
  return {
    kind,
    id,
    rev: opts.rev ?? 0,
    ts: opts.ts ?? 1_700_000_000_000 + n,
    body: { id, n, pad: 'x'.repeat(opts.pad ?? 10) },
  };
}

const bytesOf = (it: OutboxItem) => encodeItem(it).bytes;
const seqsOf = (o: Outbox, kind: OutboxKind) => o.peek(kind, 1e9).map((s) => s.seq);
const idsOf = (o: Outbox, kind: OutboxKind) => o.peek(kind, 1e9).map((s) => s.id);

export function outboxConformance(name: string, makeOutbox: MakeOutbox): void {
  const withOutbox =
    (limits: OutboxLimits | undefined, fn: (o: Outbox) => void | Promise<void>) => async () => {
      const o = await makeOutbox(limits);
      try {
        await fn(o);
      } finally {
        o.close();
      }
    };

  describe(`Outbox conformance: ${name}`, () => {
    it(
      'starts empty',
      withOutbox(undefined, (o) => {
        assert.deepEqual(o.peek('summaries', 10), []);
        const s = o.stats();
        assert.equal(s.items, 0);
        assert.equal(s.bytes, 0);
        assert.equal(s.oldestTs, null);
        assert.deepEqual(s.byKind, { summaries: 0, alerts: 0, late: 0 });
      }),
    );

    it(
      'peek returns items of one kind oldest first, with body, json, bytes and increasing seqs',
      withOutbox(undefined, (o) => {
        const items = [
          item('summaries', 1),
          item('alerts', 2),
          item('summaries', 3),
          item('late', 4),
          item('summaries', 5),
        ];
        const r = o.append(items);
        assert.deepEqual({ ...r }, { appended: 5, dropped: 0, rejected: 0, lastSeq: 5 });
        const got = o.peek('summaries', 10);
        assert.deepEqual(
          got.map((g) => g.id),
          ['summaries-00000001', 'summaries-00000003', 'summaries-00000005'],
        );
        assert.deepEqual(got[0]!.body, items[0]!.body);
        assert.equal(got[0]!.json, JSON.stringify(items[0]!.body));
        assert.equal(got[0]!.kind, 'summaries');
        assert.equal(got[0]!.rev, 0);
        assert.equal(got[0]!.ts, items[0]!.ts);
        assert.equal(got[0]!.bytes, bytesOf(items[0]!));
        assert.ok(got[0]!.seq < got[1]!.seq && got[1]!.seq < got[2]!.seq);
        assert.deepEqual(idsOf(o, 'alerts'), ['alerts-00000002']);
        assert.deepEqual(idsOf(o, 'late'), ['late-00000004']);
      }),
    );

    it(
      'peek honours limit and afterSeq (items in flight are skipped)',
      withOutbox(undefined, (o) => {
        o.append(Array.from({ length: 10 }, (_, i) => item('summaries', i)));
        const first = o.peek('summaries', 4);
        assert.equal(first.length, 4);
        const next = o.peek('summaries', 4, first.at(-1)!.seq);
        assert.deepEqual(
          next.map((n) => n.id),
          ['summaries-00000004', 'summaries-00000005', 'summaries-00000006', 'summaries-00000007'],
        );
        assert.equal(o.peek('summaries', 100, next.at(-1)!.seq).length, 2);
        assert.deepEqual(o.peek('summaries', 0), []);
      }),
    );

    it(
      'ack deletes exactly the given seqs; unknown or repeated seqs are ignored',
      withOutbox(undefined, (o) => {
        o.append(Array.from({ length: 6 }, (_, i) => item(i % 2 ? 'alerts' : 'summaries', i)));
        const s = o.peek('summaries', 10);
        const a = o.peek('alerts', 10);
        o.ack([s[0]!.seq, a[1]!.seq, 999_999]);
        o.ack([s[0]!.seq]);
        assert.deepEqual(idsOf(o, 'summaries'), ['summaries-00000002', 'summaries-00000004']);
        assert.deepEqual(idsOf(o, 'alerts'), ['alerts-00000001', 'alerts-00000005']);
        const st = o.stats();
        assert.equal(st.items, 4);
        assert.deepEqual(st.byKind, { summaries: 2, alerts: 2, late: 0 });
        o.ack([]);
        o.ack([...seqsOf(o, 'summaries'), ...seqsOf(o, 'alerts')]);
        assert.equal(o.stats().items, 0);
        assert.equal(o.stats().bytes, 0);
      }),
    );

    it(
      'ack of a run of seqs deletes exactly that run, whatever the order or gaps',
      withOutbox(undefined, (o) => {
        o.append([
          item('summaries', 0),
          item('summaries', 1),
          item('alerts', 2),
          item('summaries', 3),
          item('summaries', 4),
        ]);
        const s = seqsOf(o, 'summaries');
        o.ack([s[1]!, s[2]!]); // not contiguous: an alert lies between them
        assert.deepEqual(idsOf(o, 'summaries'), ['summaries-00000000', 'summaries-00000004']);
        assert.deepEqual(idsOf(o, 'alerts'), ['alerts-00000002']);
        o.ack([s[3]!, s[0]!]); // unordered
        assert.deepEqual(idsOf(o, 'summaries'), []);
        assert.equal(o.stats().items, 1);
      }),
    );

    it(
      'seqs are never reused, also after everything was acknowledged',
      withOutbox(undefined, (o) => {
        o.append([item('summaries', 1), item('summaries', 2)]);
        const before = seqsOf(o, 'summaries');
        o.ack(before);
        o.append([item('summaries', 3)]);
        const [after] = seqsOf(o, 'summaries');
        assert.ok(after! > Math.max(...before), `seq ${after} reused (had ${before})`);
      }),
    );

    it(
      'stats: items, bytes (sum of item bytes), byKind and oldest event time',
      withOutbox(undefined, (o) => {
        const items = [
          item('summaries', 1, { ts: 5000 }),
          item('alerts', 2, { ts: 3000 }),
          item('late', 3, { ts: 4000 }),
        ];
        o.append(items);
        const s = o.stats();
        assert.equal(s.items, 3);
        assert.equal(
          s.bytes,
          items.reduce((n, it) => n + bytesOf(it), 0),
        );
        assert.equal(s.oldestTs, 3000);
        assert.deepEqual(s.byKind, { summaries: 1, alerts: 1, late: 1 });
        assert.deepEqual(s.dropped, { summaries: 0, alerts: 0, late: 0 });
        assert.equal(s.rejected, 0);
        assert.equal(s.writeErrors, 0);
      }),
    );

    it(
      'bytes count UTF-8, and bodies round-trip unchanged',
      withOutbox(undefined, (o) => {
        const it0: OutboxItem = {
          kind: 'alerts',
          id: 'alert-utf8-x',
          rev: 2,
          ts: 1,
          body: { message: 'Überhitzung 🔥 "quoted"\n', v: null },
        };
        o.append([it0]);
        const [got] = o.peek('alerts', 1);
        assert.deepEqual(got!.body, it0.body);
        assert.equal(got!.rev, 2);
        assert.equal(got!.bytes, Buffer.byteLength(JSON.stringify(it0.body)) + it0.id.length + 16);
      }),
    );

    it(
      'checkpoint entries are stored with the items; later values overwrite; a checkpoint alone is fine',
      withOutbox(undefined, (o) => {
        assert.equal(o.readCheckpoint('windows'), undefined);
        o.append(
          [item('summaries', 1)],
          new Map([
            ['windows', 'state-1'],
            ['rules', 'r-1'],
          ]),
        );
        assert.equal(o.readCheckpoint('windows'), 'state-1');
        o.append([], new Map([['windows', 'state-2']]));
        assert.equal(o.readCheckpoint('windows'), 'state-2');
        assert.equal(o.readCheckpoint('rules'), 'r-1');
      }),
    );

    it(
      'checkpoint entries: null deletes one; readCheckpoints lists a prefix in key order (issue 14)',
      withOutbox(undefined, (o) => {
        o.append(
          [],
          new Map([
            ['windows', 'head'],
            ['windows/d/b_%', 'B'],
            ['windows/d/a', 'A'],
            ['windows/dx', 'other'],
            ['rules', 'r'],
          ]),
        );
        assert.deepEqual(o.readCheckpoints('windows/d/'), [
          ['windows/d/a', 'A'],
          ['windows/d/b_%', 'B'],
        ]);
        o.append([item('summaries', 1)], new Map([['windows/d/a', null]]));
        assert.deepEqual(o.readCheckpoints('windows/d/'), [['windows/d/b_%', 'B']]);
        assert.equal(o.readCheckpoint('windows/d/a'), undefined);
        assert.equal(o.readCheckpoint('windows'), 'head');
      }),
    );

    it(
      'a body that is not JSON-serialisable is a programming error: thrown, nothing stored',
      withOutbox(undefined, (o) => {
        assert.throws(
          () =>
            o.append([
              item('summaries', 1),
              { kind: 'summaries', id: 'bad-item-1', rev: 0, ts: 0, body: 10n },
            ]),
          TypeError,
        );
        assert.equal(o.stats().items, 0);
      }),
    );

    describe('size policy drop-oldest-summaries', () => {
      const one = bytesOf(item('summaries', 0));
      it(
        'drops the oldest summaries to make room and counts them',
        withOutbox(
          { maxBytes: bytesOf(item('summaries', 10)) * 10, onFull: 'drop-oldest-summaries' },
          (o) => {
            const size = bytesOf(item('summaries', 10)); // same for 10..99
            assert.equal(
              o.append(Array.from({ length: 10 }, (_, i) => item('summaries', 10 + i))).appended,
              10,
            );
            const r = o.append([item('summaries', 20), item('summaries', 21), item('summaries', 22)]);
            assert.deepEqual({ ...r }, { appended: 3, dropped: 3, rejected: 0, lastSeq: 13 });
            const ids = idsOf(o, 'summaries');
            assert.equal(ids.length, 10);
            assert.equal(ids[0], 'summaries-00000013');
            assert.equal(ids.at(-1), 'summaries-00000022');
            const s = o.stats();
            assert.equal(s.bytes, size * 10);
            assert.equal(s.dropped.summaries, 3);
          },
        ),
      );

      it(
        'never drops alerts; drops summaries before late events',
        withOutbox({ maxBytes: one * 6, onFull: 'drop-oldest-summaries' }, (o) => {
          o.append([
            item('alerts', 0),
            item('late', 1),
            item('summaries', 2),
            item('alerts', 3),
            item('summaries', 4),
            item('late', 5),
          ]);
          const r = o.append([item('summaries', 6), item('summaries', 7)]);
          assert.equal(r.dropped, 2);
          assert.deepEqual(idsOf(o, 'alerts'), ['alerts-00000000', 'alerts-00000003']);
          assert.deepEqual(idsOf(o, 'late'), ['late-00000001', 'late-00000005']);
          assert.deepEqual(idsOf(o, 'summaries'), ['summaries-00000006', 'summaries-00000007']);
          o.append([item('alerts', 8), item('alerts', 9)]); // room comes from the summaries again, not the late events
          const s = o.stats();
          assert.equal(s.byKind.alerts, 4);
          assert.equal(s.byKind.late, 2);
          assert.equal(s.dropped.alerts, 0);
          assert.equal(s.dropped.summaries + s.dropped.late, 4);
          assert.ok(s.bytes <= one * 6 + 8, `bytes ${s.bytes}`); // item sizes differ by a few bytes
        }),
      );

      it(
        'when only alerts remain, alerts are still stored beyond the bound and new summaries are dropped',
        withOutbox({ maxBytes: one * 3, onFull: 'drop-oldest-summaries' }, (o) => {
          o.append([item('alerts', 0), item('alerts', 1), item('alerts', 2)]);
          const ra = o.append([item('alerts', 3)]);
          assert.deepEqual({ ...ra }, { appended: 1, dropped: 0, rejected: 0, lastSeq: 4 });
          const rs = o.append([item('summaries', 4)]);
          assert.deepEqual({ ...rs }, { appended: 0, dropped: 1, rejected: 0, lastSeq: 4 });
          const s = o.stats();
          assert.equal(s.byKind.alerts, 4);
          assert.ok(s.bytes > one * 3);
          assert.equal(s.dropped.summaries, 1);
        }),
      );

      it(
        'acknowledging a seq that the policy dropped while it was in flight is harmless',
        withOutbox({ maxBytes: one * 2, onFull: 'drop-oldest-summaries' }, (o) => {
          o.append([item('summaries', 0), item('summaries', 1)]);
          const inFlight = seqsOf(o, 'summaries');
          o.append([item('summaries', 2), item('summaries', 3)]);
          o.ack(inFlight);
          assert.deepEqual(idsOf(o, 'summaries'), ['summaries-00000002', 'summaries-00000003']);
          assert.equal(o.stats().items, 2);
        }),
      );
    });

    describe('size policy reject-new', () => {
      const one = bytesOf(item('summaries', 0));
      it(
        'refuses new summaries and late events that do not fit, keeps what is stored, counts them',
        withOutbox({ maxBytes: one * 3, onFull: 'reject-new' }, (o) => {
          o.append([item('summaries', 0), item('summaries', 1)]);
          const r = o.append([item('summaries', 2), item('late', 3), item('summaries', 4)]);
          assert.deepEqual({ ...r }, { appended: 1, dropped: 0, rejected: 2, lastSeq: 3 });
          assert.deepEqual(idsOf(o, 'summaries'), [
            'summaries-00000000',
            'summaries-00000001',
            'summaries-00000002',
          ]);
          const s = o.stats();
          assert.equal(s.rejected, 2);
          assert.deepEqual(s.dropped, { summaries: 0, alerts: 0, late: 0 });
        }),
      );

      it(
        'still accepts alerts beyond the bound',
        withOutbox({ maxBytes: one * 2, onFull: 'reject-new' }, (o) => {
          o.append([item('summaries', 0), item('summaries', 1)]);
          const r = o.append([item('alerts', 2)]);
          assert.equal(r.appended, 1);
          assert.equal(o.stats().byKind.alerts, 1);
          o.ack(seqsOf(o, 'summaries'));
          assert.equal(o.append([item('summaries', 3)]).appended, 1, 'room again after ack');
        }),
      );
    });
  });
}
