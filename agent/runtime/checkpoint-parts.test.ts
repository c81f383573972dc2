// Incremental window checkpoints (issue 14): whatever happened between two checkpoints (readings,
// late data, idle advancement, count windows closing on idle, devices evicted under maxKeys, failed
// writes, an engine rebuilt; for rules: pending `for`, firing, window revisions, missing's timers), the
// rows in the outbox read back as exactly the engine's full snapshot at the last successful write. The
// full snapshot is the oracle: it is what a checkpoint held before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../shared/clock.ts';
import type { Summary } from '../../shared/model.ts';
import { MemoryOutbox } from '../outbox/memory.ts';
import { RuleEngine, type RuleSnapshot, type RuleSpec } from '../rules/engine.ts';
import { WindowEngine, type WindowEngineOptions } from '../windows/engine.ts';
import type { WindowSpec } from '../windows/window.ts';
import { decodeCheckpointValue } from './checkpoint-codec.ts';
import {
  LineClock,
  PartedCheckpoint,
  RULE_PART_PREFIX,
  ruleLayout,
  WINDOW_PART_PREFIX,
  windowLayout,
} from './checkpoint-parts.ts';

const SPECS: WindowSpec[] = [
  {
    name: 't2s',
    type: 'tumbling',
    size: 2_000,
    aggregates: ['count', 'sum', 'first', 'p95'],
    allowedLateness: 1_000,
    match: {},
    lateEvents: 'forward',
  },
  {
    name: 'c3',
    type: 'count',
    count: 3,
    aggregates: ['count', 'max'],
    allowedLateness: 0,
    match: {},
    lateEvents: 'drop',
  },
];

const RULES = [
  { name: 'hot', kind: 'threshold', match: {}, when: 'value > 30', for: '2s' },
  { name: 'z', kind: 'zscore', match: {}, window: 5, threshold: 2 },
  { name: 'gone', kind: 'missing', match: {}, after: '3s' },
  { name: 'win', kind: 'threshold', on: { window: 't2s' }, match: {}, when: 'count > 2' },
] as unknown as RuleSpec[];

type Op =
  | { k: 'reading'; device: number; dt: number; value: number }
  | { k: 'advance'; ms: number }
  | { k: 'checkpoint'; fails: boolean }
  | { k: 'rebuild' };

const ops = (devices: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        k: fc.constant('reading' as const),
        device: fc.integer({ min: 0, max: devices - 1 }),
        dt: fc.integer({ min: -3_000, max: 500 }),
        value: fc.integer({ min: -50, max: 50 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 4_000 }) }),
    },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('checkpoint' as const), fails: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ k: 'rebuild' as const }) },
  );

// 8 devices: the same keys change again and again; 60 devices: the rule keys outgrow one bucket and are
// spread over more (every row rewritten, none left behind).
for (const devices of [8, 60])
  test(`incremental checkpoint rows read back as the full snapshot of the last successful write (${devices} devices)`, () => {
    fc.assert(
      fc.property(fc.array(ops(devices), { minLength: 1, maxLength: devices > 8 ? 300 : 120 }), (ops) => {
        const clock = new FakeClock(Date.UTC(2026, 11, 7));
        const opts: WindowEngineOptions = {
          agentId: 'gw',
          maxOutOfOrder: 500,
          idleTimeout: 3_000,
          maxKeys: 5,
          clock,
        };
        const ruleOpts = { agentId: 'gw', clock };
        let rules = new RuleEngine(RULES, ruleOpts, { alert: () => {} });
        const wout = { summary: (s: Summary) => rules.onSummary(s), late: () => {} };
        let engine = new WindowEngine(SPECS, opts, wout);
        const outbox = new MemoryOutbox();
        const line = new LineClock(clock);
        const parts = new PartedCheckpoint(windowLayout, line);
        const ruleParts = new PartedCheckpoint(ruleLayout, line);
        let expectedRules: string | undefined;
        let expected: string | undefined;
        for (const o of ops) {
          if (o.k === 'reading') {
            const r = { device: `d${o.device}`, metric: 'm', value: o.value, ts: clock.now() + o.dt };
            rules.onReading(r);
            engine.ingest(r);
          } else if (o.k === 'advance') {
            clock.advance(o.ms);
            engine.tick();
            rules.tick();
          } else if (o.k === 'rebuild') {
            // A reload: the same state in a new engine object, which must be written in full.
            engine = WindowEngine.restore(JSON.parse(JSON.stringify(engine.snapshot())), SPECS, opts, wout);
            rules = RuleEngine.restore(JSON.parse(JSON.stringify(rules.snapshot())), RULES, ruleOpts, {
              alert: () => {},
            });
          } else {
            const entries = [...parts.entries(engine), ...ruleParts.entries(rules)];
            if (o.fails) continue; // the transaction rolled back: nothing stored, nothing marked written
            outbox.append([], new Map(entries));
            parts.written();
            ruleParts.written();
            expected = JSON.stringify(engine.snapshot());
            expectedRules = JSON.stringify(rules.snapshot());
          }
          // At any time after a successful write (also later, once more time passed: the silence of rows
          // left alone is extended by the time since they were written), the rows read back as the
          // snapshot taken at that write, with the silences the restore clock implies.
          if (expected !== undefined) {
            const readClock = new FakeClock(clock.now());
            readClock.advance(clock.monotonic());
            const readLine = new LineClock(readClock);
            const got = new PartedCheckpoint(windowLayout, readLine).read(outbox) as {
              devices: { device: string }[];
            };
            const want = JSON.parse(expected) as { devices: { device: string }[] };
            const byName = (a: { device: string }, b: { device: string }) => (a.device < b.device ? -1 : 1);
            got.devices.sort(byName);
            want.devices.sort(byName);
            assert.deepEqual(got, want);
            assert.equal(partsStored(outbox, WINDOW_PART_PREFIX), want.devices.length);
            const gotRules = new PartedCheckpoint(ruleLayout, readLine).read(outbox) as RuleSnapshot;
            const wantRules = JSON.parse(expectedRules!) as RuleSnapshot;
            for (const r of [...gotRules.rules, ...wantRules.rules])
              r.keys.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
            assert.deepEqual(gotRules, wantRules);
            assert.equal(
              partsStored(outbox, RULE_PART_PREFIX),
              wantRules.rules.reduce((n, r) => n + r.keys.length, 0),
            );
          }
        }
      }),
      { numRuns: 300 },
    );
  });

/** Parts in the bucket rows: each part is stored once (a rebucketing leaves no copy behind). */
function partsStored(outbox: MemoryOutbox, prefix: string): number {
  let n = 0;
  for (const [, v] of outbox.readCheckpoints(prefix))
    n += (JSON.parse(decodeCheckpointValue(v)) as { parts: unknown[] }).parts.length;
  return n;
}

test('rows an unreadable or removed state left behind are deleted by the first write', () => {
  const clock = new FakeClock(Date.UTC(2026, 11, 7));
  const outbox = new MemoryOutbox();
  outbox.append(
    [],
    new Map([
      ['windows', '{not json'],
      [`${WINDOW_PART_PREFIX}5`, '{"at":0,"parts":[]}'],
    ]),
  );
  const parts = new PartedCheckpoint(windowLayout, new LineClock(clock));
  assert.throws(() => parts.read(outbox), SyntaxError);
  const opts: WindowEngineOptions = { agentId: 'gw', maxOutOfOrder: 0, idleTimeout: 3_000, clock };
  const engine = new WindowEngine(SPECS, opts, { summary: () => {}, late: () => {} });
  engine.ingest({ device: 'kept', metric: 'm', value: 1, ts: clock.now() });
  outbox.append([], new Map(parts.entries(engine)));
  parts.written();
  assert.deepEqual(
    outbox.readCheckpoints(WINDOW_PART_PREFIX).map(([k]) => k),
    [`${WINDOW_PART_PREFIX}0`],
  );
  assert.equal(partsStored(outbox, WINDOW_PART_PREFIX), 1);
});
