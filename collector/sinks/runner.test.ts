import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { systemClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { createCollectorMetrics } from '../metrics.ts';
import { Spool, type SpoolEntry } from '../spool/spool.ts';
import { MemorySink } from '../test-support/harness.ts';
import { SinkRunner } from './runner.ts';

const FAST = { batchSize: 3, minBackoffMs: 10, maxBackoffMs: 50, idlePollMs: 20 };

function entry(id: string): SpoolEntry {
  return {
    kind: 'summaries',
    agent: 'gw-1',
    itemId: id,
    rev: 0,
    device: 'd',
    body: Buffer.from(JSON.stringify({ id })),
  };
}

function setup(names = ['kafka', 'influx']) {
  const spool = new Spool(':memory:', {
    maxBytes: 1 << 30,
    sinks: names,
    dedupRetentionMs: 1e9,
    dedupMaxRows: 1e6,
  });
  const metrics = createCollectorMetrics(new Registry());
  const sinks = names.map((n) => new MemorySink(n));
  const runners = sinks.map((s) => new SinkRunner(s, spool, metrics, nullLogger(), systemClock, FAST));
  return { spool, metrics, sinks, runners };
}

test('a sink that is down does not stop the other; on recovery it catches up in order and the spool empties', async () => {
  const { spool, sinks, runners } = setup();
  const [kafka, influx] = sinks as [MemorySink, MemorySink];
  influx.mode = 'down';
  for (const r of runners) r.start();
  try {
    for (let i = 0; i < 10; i++) spool.append([entry(`i${i}`)]);
    await waitFor('kafka has all', () => kafka.written.length === 10);
    await waitFor('influx retried', () => influx.calls >= 3);
    assert.equal(influx.written.length, 0);
    assert.equal(spool.depth('influx').items, 10, 'kept for influx');
    influx.mode = 'ok';
    await waitFor('influx caught up', () => influx.written.length === 10, { timeoutMs: 5000 });
    assert.deepEqual(
      influx.written.map((i) => i.itemId),
      kafka.written.map((i) => i.itemId),
    );
    await waitFor('spool empty', () => spool.sizeBytes === 0);
  } finally {
    await Promise.all(runners.map((r) => r.stop()));
  }
});

test('a retriable failure in the middle: the cursor stops before it; nothing is skipped', async () => {
  const { spool, sinks, runners } = setup(['kafka']);
  const sink = sinks[0]!;
  let fail = true;
  sink.mode = (items) => ({
    ok: items.length - 1,
    failed:
      fail && items.some((i) => i.itemId === 'i4')
        ? [{ index: items.findIndex((i) => i.itemId === 'i4'), error: 'x', code: 't', retriable: true }]
        : [],
  });
  for (let i = 0; i < 8; i++) spool.append([entry(`i${i}`)]);
  runners[0]!.start();
  try {
    await waitFor('stuck at i4', () => sink.written.length >= 4 && sink.calls >= 3);
    assert.deepEqual(sink.written.map((i) => i.itemId).slice(0, 4), ['i0', 'i1', 'i2', 'i3']);
    fail = false;
    sink.mode = 'ok';
    await waitFor('all', () => sink.written.some((i) => i.itemId === 'i7'));
    const ids = new Set(sink.written.map((i) => i.itemId));
    assert.equal(ids.size, 8);
  } finally {
    await runners[0]!.stop();
  }
});

test('a permanent failure is dead-lettered through the spool (the kafka sink then ships it)', async () => {
  const { spool, sinks, runners, metrics } = setup();
  const [kafka, influx] = sinks as [MemorySink, MemorySink];
  influx.mode = (items) => {
    // Like InfluxSink: dead letters are not for this sink and count as ok.
    const i = items.findIndex((x) => x.itemId === 'bad' && x.kind !== 'deadletter');
    return {
      ok: items.length - (i >= 0 ? 1 : 0),
      failed: i >= 0 ? [{ index: i, error: 'field type conflict', code: 'bad_point', retriable: false }] : [],
    };
  };
  for (const r of runners) r.start();
  try {
    spool.append([entry('a'), entry('bad'), entry('c')]);
    await waitFor('dead letter shipped', () => kafka.written.find((i) => i.kind === 'deadletter'));
    const dl = kafka.written.find((i) => i.kind === 'deadletter')!;
    assert.equal(dl.itemId, 'bad');
    assert.match(dl.error!, /^SINK_REJECTED influx\/bad_point: field type conflict/);
    assert.deepEqual(
      influx.written.map((i) => i.itemId).filter((x) => x !== 'bad'),
      ['a', 'c'],
    );
    assert.equal(
      (await metrics.sinkErrors.get()).values.find((v) => v.labels.code === 'bad_point')?.value,
      1,
    );
    await waitFor('spool empty', () => spool.sizeBytes === 0);
  } finally {
    await Promise.all(runners.map((r) => r.stop()));
  }
});

test('Retry-After is respected', async () => {
  const { spool, sinks, runners } = setup(['influx']);
  const sink = sinks[0]!;
  const calls: number[] = [];
  sink.mode = (items) => {
    calls.push(performance.now());
    return calls.length === 1
      ? {
          ok: 0,
          failed: items.map((_, index) => ({
            index,
            error: '429',
            code: 'http_429',
            retriable: true,
            retryAfterMs: 300,
          })),
        }
      : { ok: items.length, failed: [] };
  };
  spool.append([entry('a')]);
  runners[0]!.start();
  try {
    await waitFor('second call', () => calls.length >= 2);
    const gap = calls[1]! - calls[0]!;
    assert.ok(gap >= 290, `waited ${gap.toFixed(0)} ms, expected >= 300 (maxBackoff is 50)`);
  } finally {
    await runners[0]!.stop();
  }
});

test('new items wake an idle runner; stop() returns promptly even during a backoff', async () => {
  const { spool, sinks, runners } = setup(['kafka']);
  const r = new SinkRunner(
    sinks[0]!,
    spool,
    createCollectorMetrics(new Registry()),
    nullLogger(),
    systemClock,
    {
      ...FAST,
      idlePollMs: 60_000,
      maxBackoffMs: 60_000,
      minBackoffMs: 60_000,
    },
  );
  void runners;
  r.start();
  spool.append([entry('a')]);
  await waitFor('woken', () => sinks[0]!.written.length === 1, { timeoutMs: 2000 });
  sinks[0]!.mode = 'down';
  spool.append([entry('b')]);
  await waitFor('failed once', () => sinks[0]!.calls >= 2);
  const t0 = performance.now();
  await r.stop();
  assert.ok(performance.now() - t0 < 1000);
});

test('a write that hangs is reported as stalled (and still awaited)', async () => {
  const { spool, metrics } = setup(['kafka']);
  let release: () => void = () => {};
  const sink = new MemorySink('kafka');
  let calls = 0;
  sink.write = (items) => {
    calls++;
    return new Promise((resolve) => {
      release = () => resolve({ ok: items.length, failed: [] });
    });
  };
  const r = new SinkRunner(sink, spool, metrics, nullLogger(), systemClock, { ...FAST, stallWarnMs: 50 });
  spool.append([entry('a')]);
  r.start();
  try {
    await waitFor('stalled', () => r.lastError?.startsWith('stalled'));
    assert.equal(calls, 1, 'no second write while the first hangs');
    assert.equal((await metrics.sinkErrors.get()).values.find((v) => v.labels.code === 'stalled')?.value, 1);
    release();
    await waitFor('advanced', () => spool.depth('kafka').items === 0);
  } finally {
    release();
    await r.stop();
  }
});
