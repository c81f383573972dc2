// The one test suite every Sink implementation runs against its real destination (issue 13; STYLE.md:
// one conformance suite per interface, as agent/outbox/outbox.conformance.ts). Issue 18 wrote these
// properties for the two Kafka clients through a whole collector (test/collector/sinks.test.ts); here
// they hold for every sink, at the Sink interface, so a new sink proves them by adding one test file:
//
//   sinkConformance('influx v1', influxV1Harness());
//
// What every sink promises (sink.ts): re-sending items never makes them look like new data (a store that
// overwrites keeps one point; a log such as Kafka carries the same key, partition and `edgeflow-id` on
// every copy, which is what consumers de-duplicate on, SPEC 4); its destination is created or verified;
// an item refused for good fails alone, not retriable, goes to the dead-letter path through the runner
// and does not hold up later items; an outage is retriable (never dead-lettered, never reported ok) and
// a write after it succeeds; close() leaves no socket or timer behind.
//
// The outage is real: the sink talks to its destination through a TCP proxy (test/helpers/tcp-plug.ts
// TcpPlug) that the suite unplugs (connections refused, open ones cut) and plugs back on the same port.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { systemClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { handles, moreThan } from '../../test/helpers/handles.ts';
import { TcpPlug } from '../../test/helpers/tcp-plug.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { createCollectorMetrics } from '../metrics.ts';
import { Spool, type SpoolEntry, type SpoolItem } from '../spool/spool.ts';
import { summary } from '../test-support/fixtures.ts';
import { SinkRunner } from './runner.ts';
import type { Sink, WriteResult } from './sink.ts';

/** One summary as the destination holds it. */
export interface StoredSummary {
  device: string;
  /** The window start (the point's time). */
  start: number;
  /** Log-like sinks: the `edgeflow-id` the record carries. */
  itemId?: string;
  /** Sinks that store the item's JSON: its `agent`, added by the collector (SPEC 4). */
  agent?: string;
  /** Log-like sinks: the record key and the partition it landed on. */
  key?: string;
  partition?: number;
}

export interface SinkUnderTest {
  sink: Sink;
  /** Every summary of `agent` the destination holds (copies included), once visible. */
  stored(agent: string): Promise<StoredSummary[]>;
  /** Called after the test, whatever happened (undo hooks; the suite closes the sink itself). */
  release?(): Promise<void> | void;
}

export interface SinkHarness {
  /** The destination's real address; `make(via)` reaches it through a proxy the suite can cut. */
  target: { host: string; port: number };
  /** A sink on fresh destinations (topics, agent names), reaching its destination at `via` (or directly). */
  make(via?: { host: string; port: number }): Promise<SinkUnderTest>;
  /**
   * How re-sent items show: `overwrite` — one point per item, whatever the number of sends (InfluxDB:
   * same series and time); `copies` — each send may store a copy, each with the item's identity (Kafka:
   * the idempotent producer de-duplicates its own retries, not a second write of the same item).
   */
  resend: 'overwrite' | 'copies';
  /** Partition a key lands on, for sinks that partition by key (Kafka: murmur2 as the Java client). */
  partitionOf?(key: string): number;
  /**
   * Destination checks: `verified` — start() on a missing destination rejects with a clear,
   * non-retriable error; `created` returns what start() created (e.g. topic names).
   */
  destination?: {
    created(sut: SinkUnderTest): Promise<string[]>;
    missing(): Promise<SinkUnderTest>;
  };
  /**
   * Destinations a sink cannot create (an InfluxDB database): a missing one keeps the data, each write
   * failing retriable with `code`, never dead-lettered, until an operator creates it.
   */
  missingAtWrite?: { missing(): Promise<SinkUnderTest>; code: RegExp };
  /**
   * An item this destination refuses for good, and whether dead letters themselves are stored by this
   * sink (Kafka: the dead-letter topic; InfluxDB does not store dead letters). Absent with a reason when
   * the destination refuses nothing a test can produce.
   */
  refused:
    | {
        item(agent: string, seq: number): SpoolItem;
        /** The failure's code (a metric label), e.g. /too_large/. */
        code: RegExp;
        deadLetters?(sut: SinkUnderTest, agent: string): Promise<{ itemId: string; error: string }[]>;
      }
    | { skip: string };
}

let seqs = 1;

/** A spool item of `agent` (as ingest spools it) for a fixture summary. */
export function summaryItem(agent: string, device: string, start: number, rev = 0): SpoolItem {
  const s = summary(agent, device, start, rev, rev ? { count: 60 + rev } : {});
  return {
    seq: seqs++,
    kind: 'summaries',
    agent,
    itemId: s.id,
    rev,
    device,
    body: Buffer.from(JSON.stringify(s)),
    error: null,
    topic: `edgeflow/v1/${agent}/summaries`,
    receivedAt: Date.now(),
  };
}

let agents = 0;
/** An agent name no other run uses (the destinations are shared by concurrent test files). */
export function freshAgent(base: string): string {
  return `${base}-${process.pid}-${Date.now().toString(36)}-${++agents}`;
}

const identity = (device: string, start: number) => `${device}@${start}`;

/** Writes until every item is done, as the runner does with retriable failures (bounded). */
async function writeAll(sink: Sink, items: readonly SpoolItem[], what: string): Promise<void> {
  let rest = [...items];
  await waitFor(
    what,
    async () => {
      const r: WriteResult = await sink.write(rest);
      const permanent = r.failed.filter((f) => !f.retriable);
      assert.deepEqual(permanent, [], `${what}: nothing refused for good`);
      rest = r.failed.map((f) => rest[f.index]!);
      return rest.length === 0;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

export function sinkConformance(name: string, h: SinkHarness): void {
  describe(`Sink conformance: ${name}`, () => {
    const t0 = Date.now() - 3_600_000 - (Date.now() % 60_000); // recent: VictoriaMetrics keeps 1 month
    const withSink =
      (fn: (sut: SinkUnderTest) => Promise<void>, via?: () => { host: string; port: number }) => async () => {
        const sut = await h.make(via?.());
        try {
          await fn(sut);
        } finally {
          await sut.sink.close();
          await sut.release?.();
        }
      };

    it(
      'writes every item once with its identity; a re-send does not make new data',
      withSink(async (sut) => {
        await sut.sink.start();
        assert.equal(await sut.sink.healthcheck(), true);
        const agent = freshAgent('conf-resend');
        const items = Array.from({ length: 24 }, (_, i) =>
          summaryItem(agent, `dev-${i % 6}`, t0 + i * 60_000),
        );
        await writeAll(sut.sink, items, 'first send');
        await writeAll(sut.sink, items.slice(0, 12), 're-send of half');
        const byIdentity = new Map(items.map((it, k) => [identity(it.device!, t0 + k * 60_000), it]));
        const expected = h.resend === 'overwrite' ? items.length : items.length + 12;
        const got = await waitFor(
          `${expected} stored`,
          async () => {
            const s = await sut.stored(agent);
            return s.length >= expected ? s : null;
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        );
        assert.equal(
          got.length,
          expected,
          h.resend === 'overwrite' ? 'one point per item' : 'one copy per send',
        );
        assert.deepEqual(new Set(got.map((s) => identity(s.device, s.start))), new Set(byIdentity.keys()));
        for (const s of got) {
          const it = byIdentity.get(identity(s.device, s.start))!;
          if (s.itemId !== undefined) assert.equal(s.itemId, it.itemId, 'edgeflow-id is the item id');
          if (s.agent !== undefined) assert.equal(s.agent, agent, 'the record carries its agent');
          if (s.key !== undefined) assert.equal(s.key, `${agent}/${it.device}`, 'key is {agent}/{device}');
          if (s.partition !== undefined && h.partitionOf) {
            assert.equal(s.partition, h.partitionOf(s.key!), `partition of ${s.key} (murmur2)`);
          }
        }
        if (h.partitionOf) {
          assert.ok(new Set(got.map((s) => s.partition)).size > 1, 'six keys over more than one partition');
          // Copies of one item sit in one partition: per-device order holds for consumers.
          const parts = new Map<string, Set<number | undefined>>();
          for (const s of got) {
            const k = identity(s.device, s.start);
            parts.set(k, (parts.get(k) ?? new Set()).add(s.partition));
          }
          for (const [k, p] of parts) assert.equal(p.size, 1, `${k} in one partition`);
        }
        // A rev+1 of an item is new data for the same point: a store that overwrites still holds one.
        await writeAll(sut.sink, [summaryItem(agent, 'dev-0', t0, 1)], 'rev 1');
        if (h.resend === 'overwrite') {
          await waitFor('rev 1 visible', async () => (await sut.stored(agent)).length === items.length);
        }
      }),
    );

    if (h.destination) {
      const d = h.destination;
      it(
        'creates its destination at start, or refuses to start naming what is missing',
        withSink(async (sut) => {
          await sut.sink.start();
          const created = await d.created(sut);
          assert.ok(created.length > 0, 'start() created the destination');
          const missing = await d.missing();
          try {
            await assert.rejects(
              missing.sink.start(),
              (e: Error & { code?: string; retriable?: boolean }) => {
                assert.equal(e.code, 'SINK_UNAVAILABLE');
                assert.equal(e.retriable, false);
                assert.match(e.message, /missing/);
                return true;
              },
            );
          } finally {
            await missing.sink.close();
            await missing.release?.();
          }
        }),
      );
    }

    if (h.missingAtWrite) {
      const m = h.missingAtWrite;
      it('a missing destination keeps the data: writes fail retriable, nothing is dead-lettered', async () => {
        const sut = await m.missing();
        try {
          await sut.sink.start();
          const agent = freshAgent('conf-missing');
          const r = await sut.sink.write([summaryItem(agent, 'm', t0), summaryItem(agent, 'm', t0 + 60_000)]);
          assert.equal(r.ok, 0);
          assert.deepEqual(
            r.failed.map((f) => [f.index, f.retriable]),
            [
              [0, true],
              [1, true],
            ],
          );
          for (const f of r.failed) assert.match(f.code, m.code);
        } finally {
          await sut.sink.close();
          await sut.release?.();
        }
      });
    }

    if ('skip' in h.refused) {
      it(`an item refused for good is dead-lettered and does not block later items (${h.refused.skip})`, {
        skip: h.refused.skip,
      });
    } else {
      const refused = h.refused;
      it(
        'an item refused for good fails alone, is dead-lettered, and later items still go through',
        withSink(async (sut) => {
          await sut.sink.start();
          const agent = freshAgent('conf-refused');
          const bad = refused.item(agent, 1);
          const good = (k: number) => summaryItem(agent, `ok-${k % 4}`, t0 + k * 60_000);
          // The sink alone: the refused item comes back by its index, not retriable; the rest is written.
          // Eight good items over four keys beside it: with a partitioned destination, some share the
          // refused item's partition and some do not (the kafkajs regression below needs both).
          const first = [0, 1, 2, 3, 4, 5, 6, 7].map(good);
          const r = await sut.sink.write([...first.slice(0, 4), bad, ...first.slice(4)]);
          assert.deepEqual(
            r.failed.map((f) => [f.index, f.retriable]),
            [[4, false]],
            JSON.stringify(r.failed),
          );
          assert.equal(r.ok, 8);
          assert.match(r.failed[0]!.code, refused.code);
          // A refused item does not wedge the sink (regression: kafkajs's idempotent producer then kept
          // answering OUT_OF_ORDER_SEQUENCE_NUMBER, retriable, so the runner retried it forever).
          await writeAll(sut.sink, [8, 9, 10, 11].map(good), 'after the refusal');
          // Through the runner: dead-lettered via the spool, later items not held up.
          const spool = new Spool(':memory:', {
            maxBytes: 1 << 30,
            sinks: [sut.sink.name],
            dedupRetentionMs: 1e9,
            dedupMaxRows: 1e6,
          });
          const runner = new SinkRunner(
            sut.sink,
            spool,
            createCollectorMetrics(new Registry()),
            nullLogger(),
            systemClock,
            { batchSize: 50, minBackoffMs: 50, maxBackoffMs: 500, idlePollMs: 50 },
          );
          const appended: SpoolEntry[] = [];
          const append = spool.append.bind(spool);
          spool.append = (entries) => {
            appended.push(...entries);
            return append(entries);
          };
          const bad2 = refused.item(agent, 2);
          const entry = (it: SpoolItem) => ({ ...it, dedupKey: null });
          spool.append([entry(good(12)), entry(bad2), ...[13, 14, 15].map((k) => entry(good(k)))]);
          runner.start();
          try {
            await waitFor('spool drained', () => spool.depth(sut.sink.name).items === 0, {
              timeoutMs: 60_000,
            });
          } finally {
            await runner.stop();
          }
          const stored = await waitFor('16 good items stored', async () => {
            const s = await sut.stored(agent);
            return new Set(s.map((x) => identity(x.device, x.start))).size >= 16 ? s : null;
          });
          assert.equal(new Set(stored.map((x) => identity(x.device, x.start))).size, 16);
          const dl = appended.filter((e) => e.kind === 'deadletter');
          assert.deepEqual(
            dl.map((e) => e.itemId),
            [bad2.itemId],
            'the runner dead-lettered the refused item',
          );
          assert.match(dl[0]!.error ?? '', new RegExp(`^SINK_REJECTED ${sut.sink.name}/`));
          if (refused.deadLetters) {
            const dls = await waitFor('the dead letter stored', async () => {
              const d = await refused.deadLetters!(sut, agent);
              return d.length >= 1 ? d : null;
            });
            assert.deepEqual(
              dls.map((d) => d.itemId),
              [bad2.itemId],
            );
            assert.match(dls[0]!.error, new RegExp(`^SINK_REJECTED ${sut.sink.name}/`));
          }
          spool.close();
        }),
      );
    }

    it('an outage is retriable, never dead-lettered; writes succeed once the destination is back', async () => {
      // The sink reaches its destination through a proxy: unplugged, connections are refused and the
      // open ones cut; plugged back on the same port, as a broker or database coming back.
      const plug = new TcpPlug(h.target);
      await plug.up();
      const sut = await h.make({ host: '127.0.0.1', port: plug.port });
      try {
        await sut.sink.start();
        const agent = freshAgent('conf-outage');
        const items = Array.from({ length: 30 }, (_, i) => summaryItem(agent, `d${i % 3}`, t0 + i * 60_000));
        await writeAll(sut.sink, items.slice(0, 10), 'before the outage');
        await plug.down();
        const during = await sut.sink.write(items.slice(10, 20));
        assert.equal(during.ok, 0, 'nothing reported written while the destination is gone');
        assert.equal(during.failed.length, 10);
        assert.ok(
          during.failed.every((f) => f.retriable),
          `an outage is retriable: ${JSON.stringify(during.failed[0])}`,
        );
        assert.equal(await sut.sink.healthcheck(), false, 'healthcheck says down');
        await plug.up();
        await writeAll(sut.sink, items.slice(10), 'after the outage');
        assert.equal(await sut.sink.healthcheck(), true, 'healthcheck says up again');
        const got = await waitFor('every item stored', async () => {
          const st = await sut.stored(agent);
          return new Set(st.map((x) => identity(x.device, x.start))).size >= 30 ? st : null;
        });
        assert.equal(new Set(got.map((x) => identity(x.device, x.start))).size, 30);
        if (h.resend === 'overwrite') assert.equal(got.length, 30);
      } finally {
        await sut.sink.close();
        await sut.release?.();
        await plug.down();
      }
    });

    it('close releases every socket and timer it opened', async () => {
      const base = handles();
      const sut = await h.make();
      await sut.sink.start();
      const agent = freshAgent('conf-close');
      await writeAll(sut.sink, [summaryItem(agent, 'c', t0)], 'one write');
      await sut.sink.close();
      await sut.release?.();
      const left = await waitFor(
        'handles back to where they were',
        () => (moreThan(handles(), base).length === 0 ? [] : null),
        { timeoutMs: 10_000 },
      ).catch(() => moreThan(handles(), base));
      assert.deepEqual(left, [], 'handles left after close()');
    });
  });
}
