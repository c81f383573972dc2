import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { alertId } from '../../shared/ids.ts';
import type { Alert } from '../../shared/model.ts';
import { RuleEngine, type RuleSpec, type RuleSpecInput } from './engine.ts';
import { harness, summary, T0 } from './testkit.ts';

const overheat: RuleSpecInput = {
  name: 'overheat',
  kind: 'threshold',
  match: { metric: 'temp*' },
  when: 'value > 80',
  for: '20s',
  severity: 'critical',
};

/** Snapshot through JSON (as the runtime checkpoints it) into a new engine on a new clock. */
function restart(specs: RuleSpecInput[], snap: unknown, clock = new FakeClock(T0)) {
  const alerts: Alert[] = [];
  const json = JSON.parse(JSON.stringify(snap));
  const engine = RuleEngine.restore(
    json,
    specs as RuleSpec[],
    { agentId: 'gw-test', clock },
    { alert: (a) => alerts.push(a) },
  );
  return {
    engine,
    alerts,
    clock,
    read: (value: number, at: number, device = 's1', metric = 'temperature') =>
      engine.onReading({ device, metric, value, ts: T0 + at }),
  };
}

describe('engine: routing', () => {
  it('device and metric globs select readings; no match means the rule never sees them', () => {
    const h = harness([
      { name: 'r', kind: 'threshold', match: { device: 'press-*', metric: 'temp' }, when: 'value > 1' },
    ]);
    h.read(5, 0, 'pump-1', 'temp');
    h.read(5, 0, 'press-1', 'temperature');
    assert.equal(h.alerts.length, 0);
    h.read(5, 0, 'press-1', 'temp');
    assert.deepEqual(h.states(), ['firing']);
  });

  it('reading rules ignore summaries and window rules ignore readings', () => {
    const h = harness([
      { name: 'r', kind: 'threshold', when: 'value > 1' },
      { name: 'w', kind: 'threshold', on: { window: 'w1' }, when: 'max > 1' },
    ]);
    h.engine.onSummary(summary('w1', 0, 1000, { max: 5 }));
    h.read(5, 0);
    assert.deepEqual(
      h.alerts.map((a) => a.rule),
      ['w', 'r'],
    );
  });

  it('several rules on one reading each keep their own episode', () => {
    const h = harness([
      { name: 'hi', kind: 'threshold', when: 'value > 80' },
      { name: 'veryhi', kind: 'threshold', when: 'value > 90', severity: 'critical' },
    ]);
    h.series([85, 95, 85, 70], 0, 1000);
    assert.deepEqual(
      h.alerts.map((a) => `${a.rule}:${a.state}`),
      ['hi:firing', 'veryhi:firing', 'veryhi:resolved', 'hi:resolved'],
    );
  });

  it('non-finite readings are counted as evaluation errors and change nothing', () => {
    const h = harness([{ name: 'r', kind: 'threshold', when: 'value > 1' }]);
    h.read(Number.NaN, 0);
    h.read(Number.POSITIVE_INFINITY, 0);
    assert.equal(h.alerts.length, 0);
    assert.equal(h.engine.stats().evalErrors, 2);
  });

  it('maxKeysPerRule bounds the state a flood of new devices can create', () => {
    const alerts: Alert[] = [];
    const e = new RuleEngine(
      [{ name: 'r', kind: 'threshold', when: 'value > 1' }] as RuleSpecInput[] as RuleSpec[],
      { agentId: 'a', clock: new FakeClock(), maxKeysPerRule: 3 },
      { alert: (a) => alerts.push(a) },
    );
    for (let i = 0; i < 10; i++) e.onReading({ device: `d${i}`, metric: 'm', value: 5, ts: T0 });
    assert.equal(alerts.length, 3);
    assert.equal(e.stats().keysDropped, 7);
    e.onReading({ device: 'd0', metric: 'm', value: 0, ts: T0 + 1 });
    assert.equal(alerts.length, 4, 'known keys keep working');
  });

  it('two engines in one process do not share state', () => {
    const a = harness([overheat]);
    const b = harness([overheat]);
    a.series([85, 85, 85], 0, 10_000);
    assert.equal(a.alerts.length, 1);
    assert.equal(b.alerts.length, 0);
    assert.equal(b.engine.firing().length, 0);
  });
});

describe('engine: takeChanged', () => {
  it('names a key read since the last call once, and again after the next reading', () => {
    const h = harness([
      { name: 'a', kind: 'threshold', when: 'value > 1' },
      { name: 'z', kind: 'zscore', match: { metric: 'vib' } },
    ]);
    h.read(0, 0, 's1', 'vib');
    h.read(0, 1, 's2', 'temp');
    h.read(0, 2, 's1', 'vib');
    assert.deepEqual(h.engine.takeChanged(), [
      ['a', 's1', 'vib'],
      ['z', 's1', 'vib'],
      ['a', 's2', 'temp'],
    ]);
    assert.deepEqual(h.engine.takeChanged(), []);
    h.read(0, 3, 's2', 'temp');
    assert.deepEqual(h.engine.takeChanged(), [['a', 's2', 'temp']]);
    h.read(0, 4, 's2', 'temp');
    h.read(0, 5, 's1', 'vib');
    assert.deepEqual(h.engine.takeChanged(), [
      ['a', 's2', 'temp'],
      ['a', 's1', 'vib'],
      ['z', 's1', 'vib'],
    ]);
  });
});

describe('engine: config', () => {
  it('the constructor rejects invalid specs with CONFIG_INVALID', () => {
    const bad = [{ name: 'x', kind: 'threshold', when: 'vale > 1' }] as RuleSpecInput[] as RuleSpec[];
    assert.throws(
      () => new RuleEngine(bad, { agentId: 'a', clock: new FakeClock() }, { alert: () => {} }),
      (e: unknown) =>
        e instanceof EdgeflowError &&
        e.code === 'CONFIG_INVALID' &&
        /rules\.0\.when: unknown identifier "vale"/.test(e.message),
    );
  });

  it('accepts already-validated specs (parsing is idempotent)', () => {
    const h = harness([overheat, { name: 'w', kind: 'missing', after: 5000, on: 'window:w1' }]);
    const snap = h.engine.snapshot();
    assert.equal(snap.rules.length, 2);
  });
});

describe('engine: window summaries', () => {
  const rule: RuleSpecInput = { name: 'hot', kind: 'threshold', on: 'window:w1', when: 'max > 80' };

  it('a rev+1 re-emission of the same window does not fire twice', () => {
    const h = harness([rule]);
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 85 }));
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 90, rev: 1 }));
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 90, rev: 1 })); // re-sent
    assert.deepEqual(h.states(), ['firing']);
  });

  it('a revision is evaluated with its final fields (late data can clear the window)', () => {
    const h = harness([rule]);
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 70 }));
    assert.equal(h.alerts.length, 0);
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 85, rev: 1 }));
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.ts, T0 + 60_000);
  });

  it('a revision replaces its window in stateful detectors instead of counting it twice', () => {
    // pattern: 2 hot windows within 5m. One window re-emitted must not count as two.
    const h = harness([
      { name: 'twice', kind: 'pattern', on: 'window:w1', when: 'max > 80', count: 2, within: '5m' },
    ]);
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 85 }));
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 86, rev: 1 }));
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 87, rev: 2 }));
    assert.equal(h.alerts.length, 0);
    h.engine.onSummary(summary('w1', 60_000, 60_000, { max: 85 }));
    assert.deepEqual(h.states(), ['firing']);
  });

  it('summaries of windows older than the last applied one are counted and skipped', () => {
    const h = harness([rule]);
    h.engine.onSummary(summary('w1', 60_000, 60_000, { max: 10 }));
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 99, rev: 1 }));
    assert.equal(h.alerts.length, 0);
    assert.equal(h.engine.stats().staleSummaries, 1);
  });

  it('field picks the aggregate that is the rule value', () => {
    const h = harness([{ name: 'z', kind: 'flatline', on: 'window:w1', field: 'p95', for: '2m' }]);
    for (let i = 0; i < 3; i++) h.engine.onSummary(summary('w1', i * 60_000, 60_000, { p95: 7, mean: i }));
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.value, 7);
  });

  it('a null aggregate in a condition is an evaluation error, not an alert', () => {
    const h = harness([{ name: 'n', kind: 'threshold', on: 'window:w1', when: 'mean < 1' }]);
    h.engine.onSummary(summary('w1', 0, 60_000, { count: 0, mean: null }));
    assert.equal(h.alerts.length, 0);
    assert.equal(h.engine.stats().evalErrors, 1);
  });
});

describe('engine: firing() and stats()', () => {
  it('lists the firing alerts as emitted and counts transitions', () => {
    const h = harness([{ name: 'r', kind: 'threshold', when: 'value > 1' }]);
    h.read(5, 0, 'a');
    h.read(5, 0, 'b');
    h.read(0, 1000, 'a');
    assert.deepEqual(h.engine.firing(), [h.alerts[1]]);
    assert.deepEqual(h.engine.stats(), {
      alertsFired: 2,
      alertsResolved: 1,
      firing: 1,
      evalErrors: 0,
      keysDropped: 0,
      staleSummaries: 0,
    });
  });
});

describe('engine: snapshot / restore', () => {
  it('mid-episode: keeps firing without re-emitting, and resolves the same episode', () => {
    const h = harness([overheat]);
    h.series([85, 85, 85], 0, 10_000);
    assert.deepEqual(h.states(), ['firing']);
    const firing = h.alerts[0]!;
    const r = restart([overheat], h.engine.snapshot());
    r.read(90, 30_000);
    assert.equal(r.alerts.length, 0, 'no second firing after restore');
    assert.deepEqual(r.engine.firing(), [firing]);
    assert.equal(r.engine.stats().firing, 1);
    r.read(70, 40_000);
    assert.deepEqual(
      r.alerts.map((a) => [a.state, a.id]),
      [['resolved', alertId('gw-test', 'overheat', 's1', 'temperature', firing.ts, 'resolved')]],
    );
  });

  it('keeps a pending `for` across the restart', () => {
    const h = harness([overheat]);
    h.series([85, 85], 0, 10_000); // pending since 0, 10s held
    const r = restart([overheat], h.engine.snapshot());
    r.read(85, 20_000);
    assert.deepEqual(
      r.alerts.map((a) => [a.state, a.ts]),
      [['firing', T0 + 20_000]],
    );
  });

  it('keeps detector state (a statistical baseline is not re-learned)', () => {
    const spec: RuleSpecInput = { name: 'sp', kind: 'spike', window: 5 };
    const h = harness([spec]);
    h.series([8, 9, 10, 11, 12], 0, 1000);
    const r = restart([spec], h.engine.snapshot());
    r.read(50, 5000);
    assert.deepEqual(
      r.alerts.map((a) => a.state),
      ['firing'],
    );
  });

  it('missing: the timer survives as a remaining duration on a new monotonic origin', () => {
    const spec: RuleSpecInput = { name: 'gone', kind: 'missing', after: '60s' };
    const h = harness([spec]);
    h.read(1, 0);
    h.clock.advance(40_000); // 20s left
    const clock = new FakeClock(T0);
    clock.advance(1_000_000); // the new process' monotonic clock has another origin
    const r = restart([spec], h.engine.snapshot(), clock);
    clock.advance(19_999);
    r.engine.tick();
    assert.equal(r.alerts.length, 0);
    clock.advance(1);
    r.engine.tick();
    assert.deepEqual(
      r.alerts.map((a) => [a.state, a.ts]),
      [['firing', T0 + 60_000]],
    );
  });

  it('missing: a firing episode survives and resolves on data', () => {
    const spec: RuleSpecInput = { name: 'gone', kind: 'missing', after: '60s' };
    const h = harness([spec]);
    h.read(1, 0);
    h.clock.advance(60_000);
    h.engine.tick();
    assert.deepEqual(h.states(), ['firing']);
    const r = restart([spec], h.engine.snapshot());
    r.engine.tick();
    assert.equal(r.alerts.length, 0);
    r.read(2, 100_000);
    assert.deepEqual(
      r.alerts.map((a) => a.state),
      ['resolved'],
    );
  });

  it('window revisions still work after a restore', () => {
    const spec: RuleSpecInput = {
      name: 'twice',
      kind: 'pattern',
      on: 'window:w1',
      when: 'max > 80',
      count: 2,
      within: '5m',
    };
    const h = harness([spec]);
    h.engine.onSummary(summary('w1', 0, 60_000, { max: 85 }));
    const r = restart([spec], h.engine.snapshot());
    r.engine.onSummary(summary('w1', 0, 60_000, { max: 86, rev: 1 }));
    assert.equal(r.alerts.length, 0);
  });

  it('a rule whose spec changed starts fresh; its firing keys are resolved once', () => {
    const h = harness([overheat, { name: 'other', kind: 'threshold', when: 'value > 0' }]);
    h.series([85, 85, 85], 0, 10_000);
    assert.equal(h.alerts.length, 2);
    const changed = { ...overheat, when: 'value > 90' };
    const clock = new FakeClock(T0 + 3_600_000);
    const r = restart(
      [changed, { name: 'other', kind: 'threshold', when: 'value > 0' }],
      h.engine.snapshot(),
      clock,
    );
    const firingOverheat = h.alerts.find((a) => a.rule === 'overheat')!;
    assert.deepEqual(
      r.alerts.map((a) => [a.rule, a.state, a.id, a.ts]),
      [
        [
          'overheat',
          'resolved',
          alertId('gw-test', 'overheat', 's1', 'temperature', firingOverheat.ts, 'resolved'),
          T0 + 3_600_000,
        ],
      ],
    );
    assert.deepEqual(
      r.engine.firing().map((a) => a.rule),
      ['other'],
      'the unchanged rule keeps its episode',
    );
    r.read(95, 30_000);
    r.read(95, 50_000);
    assert.deepEqual(
      r.alerts.map((a) => `${a.rule}:${a.state}`),
      ['overheat:resolved', 'overheat:firing'],
    );
  });

  it('a removed rule’s firing keys are resolved; an unsynced clock cannot date the resolution before the firing', () => {
    const h = harness([overheat]);
    h.series([85, 85, 85], 0, 10_000);
    const r = restart([], h.engine.snapshot(), new FakeClock(0));
    assert.deepEqual(
      r.alerts.map((a) => [a.state, a.ts]),
      [['resolved', h.alerts[0]!.ts]],
    );
  });

  it('a snapshot that is not one (corrupt, other version) means a fresh start, not a crash', () => {
    for (const junk of [
      null,
      42,
      'x',
      {},
      { v: 99, rules: [] },
      { v: 1, rules: [{ name: 'overheat', fp: 'x', keys: 'no' }] },
      { v: 1, rules: [null, { name: 1 }] },
    ]) {
      const r = restart([overheat], junk);
      assert.equal(r.engine.firing().length, 0);
    }
    // A key with a broken detector state is dropped (and its episode closed), the rest load.
    const h = harness([{ name: 'gone', kind: 'missing', after: '1s' }]);
    h.read(1, 0, 'a');
    h.read(1, 0, 'b');
    h.clock.advance(1000);
    h.engine.tick();
    const snap = h.engine.snapshot();
    (snap.rules[0]!.keys[0]! as { det: unknown }).det = { broken: true };
    const r = restart([{ name: 'gone', kind: 'missing', after: '1s' }], snap);
    assert.deepEqual(
      r.alerts.map((a) => [a.device, a.state]),
      [['a', 'resolved']],
    );
    assert.deepEqual(
      r.engine.firing().map((a) => a.device),
      ['b'],
    );
    // Same for kinds without their own loader: the state must have the kind's shape.
    const z = harness([{ name: 'z', kind: 'zscore', window: 3 }]);
    z.series([1, 2, 3], 0, 1000);
    const zs = z.engine.snapshot();
    (zs.rules[0]!.keys[0]! as { det: unknown }).det = {
      n: 3,
      ring: { buf: ['x'], next: 0 },
      ewMean: 0,
      ewVar: 0,
    };
    const rz = restart([{ name: 'z', kind: 'zscore', window: 3 }], zs);
    assert.equal(rz.engine.snapshot().rules[0]!.keys.length, 0, 'the damaged key starts fresh');
    rz.read(5, 5000);
    assert.equal(rz.engine.stats().evalErrors, 0);
  });

  it('the snapshot is plain JSON and shares nothing with the live state', () => {
    const h = harness([{ name: 'z', kind: 'zscore', window: 5 }]);
    h.series([1, 2, 3], 0, 1000);
    const snap = h.engine.snapshot();
    const text = JSON.stringify(snap);
    h.series([4, 5, 6], 3000, 1000);
    assert.equal(JSON.stringify(snap), text);
    assert.deepEqual(JSON.parse(text), snap);
  });
});
