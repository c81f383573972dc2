import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../shared/clock.ts';
import { lateEventId, summaryId } from '../../shared/ids.ts';
import {
  type LateEvent,
  lateEventSchema,
  type Reading,
  type Summary,
  summarySchema,
} from '../../shared/model.ts';
import { WindowEngine, type WindowEngineOptions } from './engine.ts';
import type { WindowSpec } from './window.ts';

const T = 1_700_000_040_000; // a multiple of 60 s
const ALL = ['count', 'min', 'max', 'mean', 'sum', 'stddev', 'first', 'last', 'p50', 'p95'] as const;

function spec(over: Partial<WindowSpec> & Pick<WindowSpec, 'name' | 'type'>): WindowSpec {
  return { aggregates: ['count', 'sum'], allowedLateness: 0, match: {}, lateEvents: 'drop', ...over };
}

function harness(specs: WindowSpec[], opts: Partial<WindowEngineOptions> = {}) {
  const clock = new FakeClock();
  const summaries: Summary[] = [];
  const lates: LateEvent[] = [];
  const out = { summary: (s: Summary) => summaries.push(s), late: (e: LateEvent) => lates.push(e) };
  const o: WindowEngineOptions = { agentId: 'gw-1', maxOutOfOrder: 0, idleTimeout: 30_000, clock, ...opts };
  const engine = new WindowEngine(specs, o, out);
  const r = (ts: number, value = 1, device = 'd1', metric = 'temp'): Reading => ({
    device,
    metric,
    value,
    ts,
  });
  const ingest = (...rs: Reading[]) => {
    for (const x of rs) engine.ingest(x);
  };
  return { clock, summaries, lates, engine, r, ingest, out, opts: o };
}

test('a reading exactly at a window end belongs to the next window; watermark == end emits', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 60_000, aggregates: [...ALL] })], {
    maxOutOfOrder: 5000,
  });
  h.ingest(h.r(T, 1), h.r(T + 59_999, 2), h.r(T + 60_000, 3));
  assert.equal(h.summaries.length, 0, 'watermark T+55s < end');
  h.ingest(h.r(T + 64_999, 4));
  assert.equal(h.summaries.length, 0, 'watermark end-1 does not close');
  h.ingest(h.r(T + 65_000, 5));
  assert.equal(h.summaries.length, 1, 'watermark == end closes');
  const s = h.summaries[0]!;
  assert.deepEqual(s.window, { name: 't', type: 'tumbling', start: T, end: T + 60_000 });
  assert.equal(s.id, summaryId('gw-1', 't', 'd1', 'temp', T));
  assert.equal(s.rev, 0);
  assert.equal(s.count, 2);
  assert.equal(s.first, 1);
  assert.equal(s.last, 2);
  assert.equal(s.late, 0);
  assert.deepEqual(s.tags, {});
  summarySchema.parse(s);
});

test('allowed lateness: within it the window is updated and re-emitted (rev+1, same id); at end+allowedLateness it is purged', () => {
  const h = harness([
    spec({ name: 't', type: 'tumbling', size: 1000, allowedLateness: 500, lateEvents: 'forward' }),
  ]);
  h.ingest(h.r(T + 100, 1), h.r(T + 1000, 2)); // watermark T+1000 == end: emitted
  assert.equal(h.summaries.length, 1);
  assert.equal(h.engine.stats().openWindows, 2, 'kept for lateness');
  h.ingest(h.r(T + 1499, 0)); // watermark T+1499 < end + 500
  h.ingest(h.r(T + 200, 10)); // late but accepted
  assert.equal(h.summaries.length, 2);
  const re = h.summaries[1]!;
  assert.equal(re.id, h.summaries[0]!.id);
  assert.equal(re.rev, 1);
  assert.equal(re.count, 2);
  assert.equal(re.sum, 11);
  assert.equal(re.late, 1);
  h.ingest(h.r(T + 1500, 0)); // watermark == end + allowedLateness: purged
  assert.equal(h.engine.stats().openWindows, 1);
  h.ingest(h.r(T + 300, 99)); // too late
  assert.equal(h.summaries.length, 2);
  assert.equal(h.lates.length, 1);
  const late = h.lates[0]!;
  assert.deepEqual(late, {
    id: lateEventId('gw-1', 't', 'd1', 'temp', T + 300, 0),
    device: 'd1',
    metric: 'temp',
    value: 99,
    ts: T + 300,
    window: 't',
    tags: {},
  });
  lateEventSchema.parse(late);
  const st = h.engine.stats();
  assert.equal(st.lateForwarded, 1);
  assert.equal(st.lateDropped, 0);
  assert.deepEqual(st.lateByWindow, { t: { dropped: 0, forwarded: 1 } });
  assert.equal(st.emitted, 1);
  assert.equal(st.reemitted, 1);
});

test('allowedLateness 0: late data is dropped and counted, nothing forwarded', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 1000 })]);
  h.ingest(h.r(T + 100), h.r(T + 1000), h.r(T + 999));
  assert.equal(h.summaries.length, 1);
  assert.equal(h.lates.length, 0);
  assert.deepEqual(h.engine.stats().lateByWindow, { t: { dropped: 1, forwarded: 0 } });
  assert.equal(h.engine.stats().lateDropped, 1);
});

test('watermarks are per device: a device with a clock far ahead does not make the others late', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 1000 })], { maxOutOfOrder: 100 });
  h.ingest(h.r(T + 3_600_000, 1, 'skewed'));
  h.ingest(h.r(T + 10, 1, 'ok'), h.r(T + 500, 1, 'ok'), h.r(T + 1100, 1, 'ok'));
  assert.deepEqual(
    h.summaries.map((s) => [s.device, s.count]),
    [['ok', 2]],
  );
  assert.equal(h.engine.stats().lateDropped, 0);
});

test('idle devices: windows close after idleTimeout of monotonic time; wall-clock jumps change nothing', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 60_000 })], {
    maxOutOfOrder: 5000,
    idleTimeout: 30_000,
  });
  h.ingest(h.r(T + 1000));
  h.clock.setWall(h.clock.now() + 86_400_000); // NTP step: must not close anything
  h.clock.advance(29_999);
  h.engine.tick();
  assert.equal(h.summaries.length, 0);
  h.clock.advance(1);
  h.engine.tick(); // idle: watermark = T+1000-5000+30000 = T+26s
  assert.equal(h.summaries.length, 0);
  h.clock.advance(33_999);
  h.engine.tick(); // watermark T+1000-5000+63999 = T+59.999s
  assert.equal(h.summaries.length, 0);
  h.clock.advance(1);
  h.engine.tick(); // T+60s == end
  assert.equal(h.summaries.length, 1);
  assert.deepEqual(
    [h.engine.stats().keys, h.engine.stats().openWindows, h.engine.stats().devices],
    [0, 0, 1],
  );
  h.clock.setWall(0);
  h.engine.tick();
  assert.equal(h.summaries.length, 1);
  // The device's watermark outlives its windows: a reading for the emitted, purged window is late, it
  // does not re-open it under the same id (which would overwrite the emitted summary downstream).
  h.ingest(h.r(T + 2000, 5));
  assert.equal(h.summaries.length, 1);
  assert.equal(h.engine.stats().lateDropped, 1);
  // ... but without open windows it is not advanced further: a device back after a long silence (its
  // own clock behind processing time) is not made late by the silence itself.
  h.clock.advance(1_000_000);
  h.engine.tick();
  h.ingest(h.r(T + 60_500, 6));
  assert.deepEqual([h.engine.stats().lateDropped, h.engine.stats().openWindows], [1, 1]);
});

test('devices are bounded by maxKeys: a window-less device is evicted (oldest first) to make room', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 1000 })], { maxKeys: 2 });
  h.ingest(h.r(T, 1, 'a'), h.r(T + 1000, 1, 'a')); // a: first window emitted and purged, second open
  h.ingest(h.r(T, 1, 'b'), h.r(T + 1000, 1, 'b'));
  h.ingest(h.r(T, 1, 'c'));
  assert.equal(h.engine.stats().droppedByReason.max_keys, 1, 'no window-less device to evict');
  h.clock.advance(100_000);
  h.engine.tick(); // a and b idle: their windows close; both keep only a watermark
  assert.deepEqual([h.engine.stats().keys, h.engine.stats().devices], [0, 2]);
  h.ingest(h.r(T + 5000, 1, 'c'));
  assert.deepEqual(
    [h.engine.stats().evictedDevices, h.engine.stats().devices, h.engine.stats().keys],
    [1, 2, 1],
  );
  h.ingest(h.r(T, 1, 'b')); // b's watermark survived: late
  assert.equal(h.engine.stats().lateDropped, 1);
  h.ingest(h.r(T, 1, 'a')); // a was evicted: its watermark is gone, so b (keyless) makes room and a starts afresh
  const st = h.engine.stats();
  assert.deepEqual([st.evictedDevices, st.devices, st.keys, st.openWindows], [2, 2, 2, 2]);
  assert.equal(st.droppedByReason.max_keys, 1);
});

test('hopping: one reading in size/slide windows, emitted in end order', () => {
  const h = harness([spec({ name: 'h', type: 'hopping', size: 1000, slide: 250 })]);
  h.ingest(h.r(T + 100, 1), h.r(T + 600, 2));
  h.ingest(h.r(T + 2000, 0));
  assert.deepEqual(
    h.summaries.map((s) => [s.window.start - T, s.window.end - T, s.count, s.sum]),
    [
      [-750, 250, 1, 1],
      [-500, 500, 1, 1],
      [-250, 750, 2, 3],
      [0, 1000, 2, 3],
      [250, 1250, 1, 2],
      [500, 1500, 1, 2],
    ],
  );
});

test('sessions: close at last event + gap, merge when a reading bridges two, superseded count when the start moves', () => {
  const h = harness([
    spec({
      name: 's',
      type: 'session',
      gap: 1000,
      allowedLateness: 5000,
      aggregates: ['count', 'first', 'last'],
    }),
  ]);
  h.ingest(h.r(T, 1), h.r(T + 500, 2)); // session A [T, T+1500)
  h.ingest(h.r(T + 2400, 3)); // no overlap: session B [T+2400, T+3400); watermark T+2400 closes A
  assert.deepEqual(
    h.summaries.map((s) => [s.window.start - T, s.window.end - T, s.count]),
    [[0, 1500, 2]],
  );
  h.ingest(h.r(T + 3399, 4)); // B [T+2400, T+4399)
  h.ingest(h.r(T + 1450, 5)); // [T+1450, T+2450) bridges A and B: merged, keeps A's start and id
  assert.equal(h.engine.stats().openWindows, 1);
  h.ingest(h.r(T + 10_000, 0)); // closes the merged session (and purges it: 10000 >= 4399 + 5000)
  const merged = h.summaries.filter((s) => s.window.start === T);
  assert.deepEqual(
    merged.map((s) => [
      s.id === summaryId('gw-1', 's', 'd1', 'temp', T),
      s.rev,
      s.window.end - T,
      s.count,
      s.first,
      s.last,
    ]),
    [
      [true, 0, 1500, 2, 1, 2],
      [true, 1, 4399, 5, 1, 4],
    ],
  );
  h.ingest(h.r(T + 9500, 7)); // extends the open [T+10000, ...) session backwards: never emitted, nothing superseded
  h.ingest(h.r(T + 12_000, 0)); // emits [T+9500, T+11000)
  assert.equal(h.engine.stats().supersededSessions, 0);
  const s1 = h.summaries.at(-1)!;
  assert.deepEqual([s1.window.start - T, s1.window.end - T, s1.count], [9500, 11_000, 2]);
  // Within lateness, a reading before an emitted session's start moves the start: new id, old one superseded.
  h.ingest(h.r(T + 9000, 8));
  assert.equal(h.engine.stats().supersededSessions, 1);
  const moved = h.summaries.at(-1)!;
  assert.deepEqual([moved.window.start - T, moved.rev, moved.count, moved.late], [9000, 0, 3, 1]);
  assert.equal(moved.id, summaryId('gw-1', 's', 'd1', 'temp', T + 9000));
  // A reading exactly `gap` after a session's last reading starts a new session.
  h.ingest(h.r(T + 13_000, 1));
  assert.equal(
    h.engine.stats().openWindows,
    3,
    '[9000,11000) kept for lateness, [12000,13000), [13000,14000)',
  );
});

test('count windows: emit when full, window = event-time bounds, deterministic per-key sequence ids; idle flushes a partial one', () => {
  const h = harness([spec({ name: 'c', type: 'count', count: 3, aggregates: ['count', 'first', 'last'] })], {
    idleTimeout: 1000,
  });
  h.ingest(h.r(T + 50, 1), h.r(T + 10, 2), h.r(T + 30, 3), h.r(T + 5, 4));
  assert.equal(h.summaries.length, 1);
  const s = h.summaries[0]!;
  assert.deepEqual(s.window, { name: 'c', type: 'count', start: T + 10, end: T + 50 });
  assert.deepEqual([s.count, s.first, s.last], [3, 2, 1]);
  assert.equal(s.id, summaryId('gw-1', 'c#0', 'd1', 'temp', T + 10));
  h.clock.advance(999);
  h.engine.tick();
  assert.equal(h.summaries.length, 1);
  h.clock.advance(1);
  h.engine.tick();
  assert.equal(h.summaries.length, 2);
  const p = h.summaries[1]!;
  assert.deepEqual([p.count, p.window.start, p.window.end], [1, T + 5, T + 5]);
  assert.equal(p.id, summaryId('gw-1', 'c#1', 'd1', 'temp', T + 5));
  assert.equal(h.engine.stats().openWindows, 0);
  assert.equal(h.engine.stats().lateDropped, 0, 'event-time order is irrelevant to count windows');
});

test('matching: globs on device and metric; only asked aggregates; a reading routes to every matching spec', () => {
  const h = harness([
    spec({
      name: 'a',
      type: 'tumbling',
      size: 1000,
      match: { device: 'press-*', metric: 'temp*' },
      aggregates: ['max'],
    }),
    spec({ name: 'b', type: 'tumbling', size: 1000, match: { metric: 'temp' }, aggregates: ['min'] }),
  ]);
  h.ingest(h.r(T, 5, 'press-7', 'temp'), h.r(T, 6, 'other', 'temp'), h.r(T, 7, 'press-7', 'hum'));
  h.ingest(h.r(T + 1000, 0, 'press-7', 'temp'), h.r(T + 1000, 0, 'other', 'temp'));
  assert.deepEqual(
    h.summaries.map((s) => {
      const { id: _id, window: _w, rev: _r, tags: _t, late: _l, device, metric, ...agg } = s;
      return [s.window.name, device, metric, agg];
    }),
    [
      ['a', 'press-7', 'temp', { count: 1, max: 5 }],
      ['b', 'press-7', 'temp', { count: 1, min: 5 }],
      ['b', 'other', 'temp', { count: 1, min: 6 }],
    ],
  );
});

test('emission order within one ingest()/tick(): by window end, then key (window name, device, metric)', () => {
  const h = harness(
    [spec({ name: 'z', type: 'tumbling', size: 1000 }), spec({ name: 'a', type: 'tumbling', size: 500 })],
    { idleTimeout: 1, maxOutOfOrder: 10_000 },
  );
  h.ingest(h.r(T + 10, 1, 'd1', 'm2'), h.r(T + 10, 1, 'd1', 'm1'), h.r(T + 600, 1, 'd1', 'm1'));
  h.ingest(h.r(T + 5, 1, 'd0', 'm1'));
  h.clock.advance(100_000);
  h.engine.tick();
  assert.deepEqual(
    h.summaries.map((s) => `${s.window.end - T} ${s.window.name} ${s.device} ${s.metric}`),
    [
      '500 a d0 m1',
      '500 a d1 m1',
      '500 a d1 m2',
      '1000 a d1 m1',
      '1000 z d0 m1',
      '1000 z d1 m1',
      '1000 z d1 m2',
    ],
  );
});

test('bounded state: maxKeys and maxOpenWindows drop and count readings, never throw', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 1000 })], { maxKeys: 2, maxOpenWindows: 3 });
  h.ingest(h.r(T, 1, 'a'), h.r(T, 1, 'b'));
  h.ingest(h.r(T, 1, 'c')); // third key
  assert.deepEqual(h.engine.stats().droppedByReason, { max_keys: 1, max_open_windows: 0, invalid_value: 0 });
  assert.equal(h.engine.stats().keys, 2);
  assert.equal(h.engine.stats().devices, 2, 'no state kept for a refused device');
  h.ingest(h.r(T + 100, 1, 'a', 'temp')); // same window
  h.ingest(h.r(T + 1100, 1, 'b', 'temp')); // closes b's first window, opens its second: 2 open
  h.ingest(h.r(T + 1200, 1, 'a', 'temp')); // closes a's first window: still ok
  assert.equal(h.engine.stats().openWindows, 2);
  const st0 = h.engine.stats().droppedByReason.max_open_windows;
  const hb = harness([spec({ name: 't', type: 'tumbling', size: 1000 })], {
    maxOpenWindows: 2,
    maxOutOfOrder: 10_000,
  });
  hb.ingest(hb.r(T), hb.r(T + 1000), hb.r(T + 2000), hb.r(T + 2500), hb.r(T + 50));
  assert.equal(hb.engine.stats().droppedByReason.max_open_windows, 2);
  assert.equal(hb.engine.stats().openWindows, 2);
  // a key whose reading no window could take does not keep a maxKeys slot
  hb.ingest(hb.r(T + 50, 1, 'd2'));
  assert.deepEqual([hb.engine.stats().keys, hb.engine.stats().devices], [1, 1]);
  assert.equal(st0, 0);
  h.ingest(
    { device: 'a', metric: 'temp', value: Number.NaN, ts: T },
    { device: 'a', metric: 'temp', value: 1, ts: Number.POSITIVE_INFINITY },
  );
  assert.equal(h.engine.stats().droppedByReason.invalid_value, 2);
});

test('bounded state under a flood of distinct keys stays within the bounds', () => {
  for (const [maxOpenWindows, reason, kept] of [
    [500, 'max_open_windows', 50], // 10 hopping windows per reading: windows run out first
    [5000, 'max_keys', 100],
  ] as const) {
    const h = harness([spec({ name: 't', type: 'hopping', size: 10_000, slide: 1000 })], {
      maxKeys: 100,
      maxOpenWindows,
    });
    for (let i = 0; i < 20_000; i++) h.engine.ingest(h.r(T + i, i, `dev-${i}`, `m-${i % 7}`));
    const st = h.engine.stats();
    assert.ok(st.keys <= 100 && st.openWindows <= maxOpenWindows && st.devices <= 100, JSON.stringify(st));
    assert.equal(st.droppedByReason[reason], 20_000 - kept);
    assert.equal(st.keys, kept);
  }
});

// ---- checkpoints ----

const SPECS: WindowSpec[] = [
  spec({
    name: 'tum',
    type: 'tumbling',
    size: 1000,
    allowedLateness: 700,
    aggregates: [...ALL],
    lateEvents: 'forward',
  }),
  spec({ name: 'hop', type: 'hopping', size: 1200, slide: 400, allowedLateness: 300, aggregates: [...ALL] }),
  spec({
    name: 'ses',
    type: 'session',
    gap: 500,
    allowedLateness: 400,
    aggregates: [...ALL],
    lateEvents: 'forward',
  }),
  spec({ name: 'cnt', type: 'count', count: 7, aggregates: [...ALL] }),
];

type Step = { kind: 'r'; r: Reading } | { kind: 'tick'; advance: number };

const stepsArb = fc.array(
  fc.oneof(
    {
      weight: 12,
      arbitrary: fc
        .record({
          device: fc.constantFrom('a', 'b', 'c'),
          metric: fc.constantFrom('x', 'y'),
          ts: fc.integer({ min: 0, max: 8000 }),
          value: fc.integer({ min: -50, max: 50 }),
        })
        .map((r): Step => ({ kind: 'r', r: { ...r, ts: T + r.ts } })),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0, max: 3000 }).map((advance): Step => ({ kind: 'tick', advance })),
    },
  ),
  { minLength: 1, maxLength: 150 },
);

function run(steps: Step[], from: number, to: number, h: ReturnType<typeof harness>): void {
  for (const s of steps.slice(from, to)) {
    if (s.kind === 'r') h.engine.ingest(s.r);
    else {
      h.clock.advance(s.advance);
      h.engine.tick();
    }
  }
}

test('snapshot/restore mid-stream (through JSON) gives output identical to an uninterrupted run', () => {
  fc.assert(
    fc.property(stepsArb, fc.nat(), (steps, cutAt) => {
      const opts = { maxOutOfOrder: 300, idleTimeout: 2000 };
      const whole = harness(SPECS, opts);
      run(steps, 0, steps.length, whole);
      whole.clock.advance(100_000);
      whole.engine.tick();

      const cut = cutAt % (steps.length + 1);
      const first = harness(SPECS, opts);
      run(steps, 0, cut, first);
      const snap = JSON.parse(JSON.stringify(first.engine.snapshot()));
      // A new process with another monotonic origin (silence is stored relative), same specs.
      const second = harness(SPECS, opts);
      second.clock.advance(first.clock.monotonic() + 777_777);
      second.engine = WindowEngine.restore(snap, SPECS, second.opts, second.out);
      run(steps, cut, steps.length, second);
      second.clock.advance(100_000);
      second.engine.tick();

      assert.deepEqual([...first.summaries, ...second.summaries], whole.summaries);
      assert.deepEqual([...first.lates, ...second.lates], whole.lates);
      assert.deepEqual(second.engine.stats(), whole.engine.stats());
    }),
    { numRuns: 150 },
  );
});

test('same input, same output (determinism)', () => {
  fc.assert(
    fc.property(stepsArb, (steps) => {
      const a = harness(SPECS, { maxOutOfOrder: 200 });
      const b = harness(SPECS, { maxOutOfOrder: 200 });
      run(steps, 0, steps.length, a);
      run(steps, 0, steps.length, b);
      assert.deepEqual(a.summaries, b.summaries);
      assert.deepEqual(a.engine.snapshot(), b.engine.snapshot());
    }),
    { numRuns: 50 },
  );
});

test('restore after a spec change (SIGHUP): changed windows dropped and counted, unchanged ones kept', () => {
  const h = harness(SPECS);
  h.ingest(h.r(T + 10, 1, 'a', 'x'), h.r(T + 20, 2, 'a', 'x'));
  const before = h.engine.stats().openWindows; // tum 1, hop 3, ses 1, cnt 1
  assert.equal(before, 6);
  const changed = SPECS.map((s) =>
    s.name === 'hop'
      ? { ...s, slide: 600 }
      : s.name === 'tum'
        ? { ...s, allowedLateness: 1, lateEvents: 'drop' as const }
        : s,
  ).filter((s) => s.name !== 'cnt');
  const r = WindowEngine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())), changed, h.opts, h.out);
  assert.equal(r.stats().droppedOnRestore, 3 + 1, 'hop (3 windows) changed, cnt (1) removed');
  assert.equal(r.stats().openWindows, 2, 'tum (lateness/lateEvents only) and ses kept');
  r.ingest(h.r(T + 5000, 0, 'a', 'x'));
  const tum = h.summaries.find((s) => s.window.name === 'tum')!;
  assert.equal(tum.count, 2, 'restored state continues');
  assert.throws(() => WindowEngine.restore({ v: 99 }, SPECS, h.opts, h.out), { code: 'STORE_CORRUPT' });
  assert.throws(() => WindowEngine.restore(null, SPECS, h.opts, h.out), { code: 'STORE_CORRUPT' });
});

test('fractional timestamps are floored to whole milliseconds (wire ints)', () => {
  const h = harness([spec({ name: 's', type: 'session', gap: 100, lateEvents: 'forward' })]);
  h.ingest(h.r(T + 0.7, 1), h.r(T + 500.2, 2), h.r(T + 1.5, 3));
  const s = h.summaries[0]!;
  assert.deepEqual([s.window.start, s.window.end], [T, T + 100]);
  assert.equal(h.lates[0]!.ts, T + 1);
  summarySchema.parse(s);
  lateEventSchema.parse(h.lates[0]);
});

test('snapshot is plain JSON (no Infinity, no class instances)', () => {
  const h = harness(SPECS);
  h.ingest(h.r(T, 1, 'a', 'x'), h.r(T + 3, -2.5, 'a', 'y'));
  const snap = h.engine.snapshot();
  assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
});

test('more metrics than the match cache holds: key names built again after it starts over, readings still meet their keys (issue 14)', () => {
  const h = harness([spec({ name: 't', type: 'tumbling', size: 60_000 })]);
  const metrics = Array.from({ length: 12_000 }, (_, i) => `m${i}`);
  for (const m of metrics) h.ingest(h.r(T, 1, 'd1', m));
  // the early metrics again, after both caches started over: the same keys, not new ones
  for (const m of metrics.slice(0, 50)) h.ingest(h.r(T + 1, 2, 'd1', m));
  assert.equal(h.engine.stats().keys, 12_000);
  h.ingest(h.r(T + 60_000, 1, 'd1', 'm0'));
  assert.equal(h.summaries.length, 12_000);
  const byMetric = new Map(h.summaries.map((s) => [s.metric, s]));
  assert.equal(byMetric.get('m0')!.count, 2);
  assert.equal(byMetric.get('m49')!.sum, 3);
  assert.equal(byMetric.get('m50')!.count, 1);
  assert.equal(byMetric.get('m11999')!.count, 1);
});

test('summaries closing together come out in `name \\0 device \\0 metric` string order, \\0 and prefixes included (issue 14)', () => {
  const h = harness([
    spec({ name: 'a', type: 'tumbling', size: 60_000 }),
    spec({ name: 'a b', type: 'tumbling', size: 60_000 }),
  ]);
  const devices = ['d', 'd\u0000', 'd\u0000a', 'd a', 'da', '', 'D', 'é'];
  const metrics = ['m', 'm\u0000x', 'a', 'm x'];
  for (const d of devices) for (const m of metrics) h.ingest(h.r(T, 1, d, m));
  // one tick closes every device's windows (idle watermarks): one batch, sorted as a whole
  h.clock.advance(600_000);
  h.engine.tick();
  const got = h.summaries.map((s) => `${s.window.name}\0${s.device}\0${s.metric}`);
  assert.equal(got.length, 2 * devices.length * metrics.length);
  assert.deepEqual(got, [...got].sort());
});
