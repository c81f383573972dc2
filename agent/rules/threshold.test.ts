import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alertId } from '../../shared/ids.ts';
import { RuleEngine, type RuleSpec, type RuleSpecInput } from './engine.ts';
import { harness, summary, T0 } from './testkit.ts';

const overheat = {
  name: 'overheat',
  kind: 'threshold',
  match: { metric: 'temperature' },
  when: 'value > 80',
  severity: 'critical',
} as const;

describe('threshold', () => {
  it('fires once when the condition holds and resolves when it stops', () => {
    const h = harness([overheat]);
    h.series([70, 85, 90, 95], 0, 1000);
    assert.deepEqual(h.states(), ['firing']);
    const f = h.alerts[0]!;
    assert.equal(f.ts, T0 + 1000);
    assert.equal(f.value, 85);
    assert.equal(f.severity, 'critical');
    assert.equal(f.rule, 'overheat');
    assert.equal(f.id, alertId('gw-test', 'overheat', 's1', 'temperature', T0 + 1000, 'firing'));
    h.read(80, 4000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    const r = h.alerts[1]!;
    assert.equal(r.ts, T0 + 4000);
    assert.equal(r.value, 80);
    assert.equal(r.id, alertId('gw-test', 'overheat', 's1', 'temperature', T0 + 1000, 'resolved'));
    assert.deepEqual(h.engine.stats(), {
      alertsFired: 1,
      alertsResolved: 1,
      firing: 0,
      evalErrors: 0,
      keysDropped: 0,
      staleSummaries: 0,
    });
  });

  it('does not fire below or exactly at the limit of a strict comparison', () => {
    const h = harness([overheat]);
    h.series([79.9, 80, 80, 42], 0, 1000);
    assert.equal(h.alerts.length, 0);
  });

  it('ignores readings the match does not select', () => {
    const h = harness([overheat]);
    h.read(99, 0, 's1', 'humidity');
    assert.equal(h.alerts.length, 0);
  });

  it('keeps one episode per (device, metric) key', () => {
    const h = harness([overheat]);
    h.read(90, 0, 'a');
    h.read(90, 0, 'b');
    h.read(90, 1000, 'a');
    assert.deepEqual(
      h.alerts.map((a) => [a.device, a.state]),
      [
        ['a', 'firing'],
        ['b', 'firing'],
      ],
    );
    assert.equal(h.engine.firing().length, 2);
  });

  it('for: fires on the reading exactly `for` after the condition began, not before', () => {
    const h = harness([{ ...overheat, for: '30s' }]);
    h.series([85, 85, 85], 0, 10_000);
    assert.equal(h.alerts.length, 0, 'held 20s of 30s');
    h.read(85, 30_000);
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.ts, T0 + 30_000);
  });

  it('for: a dip below the limit restarts the wait', () => {
    const h = harness([{ ...overheat, for: '30s' }]);
    h.series([85, 85, 70, 85, 85, 85], 0, 10_000); // condition again from t=30s
    assert.equal(h.alerts.length, 0);
    h.read(85, 60_000);
    assert.deepEqual(h.states(), ['firing']);
  });

  it('for: resolves immediately (no `for` on the way down)', () => {
    const h = harness([{ ...overheat, for: '10s' }]);
    h.series([85, 85, 70], 0, 10_000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
  });

  it('clearWhen: hysteresis keeps firing until the clear condition holds', () => {
    const h = harness([{ ...overheat, clearWhen: 'value < 75' }]);
    h.series([85, 79, 76, 81, 75], 0, 1000);
    assert.deepEqual(h.states(), ['firing'], 'between 75 and 80 stays firing');
    h.read(74.9, 5000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
    h.read(79, 6000);
    assert.deepEqual(h.states(), ['firing', 'resolved'], 'not firing: 79 does not fire again');
  });

  it('clearWhen with for: before firing, `when` itself must hold for the whole `for`', () => {
    const h = harness([{ ...overheat, clearWhen: 'value < 75', for: '30s' }]);
    h.series([85, 85, 78, 85, 85], 0, 10_000); // 78 is above clearWhen but breaks `when`
    assert.equal(h.alerts.length, 0);
    h.series([85, 85], 50_000, 10_000); // 85 since 30s: fires at 60s
    assert.deepEqual(
      h.alerts.map((a) => [a.state, a.ts]),
      [['firing', T0 + 60_000]],
    );
  });

  it('clearWhen survives a restart: the restored episode still needs clearWhen to resolve', () => {
    const spec = { ...overheat, clearWhen: 'value < 75' };
    const h = harness([spec]);
    h.read(85, 0);
    const snap = JSON.parse(JSON.stringify(h.engine.snapshot()));
    const h2 = harness([spec]);
    const r = RuleEngine.restore(
      snap,
      [spec] as RuleSpecInput[] as RuleSpec[],
      { agentId: 'gw-test', clock: h2.clock },
      { alert: (a) => h2.alerts.push(a) },
    );
    r.onReading({ device: 's1', metric: 'temperature', value: 78, ts: T0 + 1000 });
    assert.equal(h2.alerts.length, 0);
    r.onReading({ device: 's1', metric: 'temperature', value: 74, ts: T0 + 2000 });
    assert.deepEqual(h2.states(), ['resolved']);
  });

  it('without clearWhen a value just under the limit resolves', () => {
    const h = harness([overheat]);
    h.series([85, 79], 0, 1000);
    assert.deepEqual(h.states(), ['firing', 'resolved']);
  });

  it('message template and default message', () => {
    const h = harness([
      { ...overheat, message: '{rule}: {device} {metric} at {value} ({severity}, {state})' },
      { ...overheat, name: 'plain' },
    ]);
    h.read(85.123456789, 0);
    assert.equal(h.alerts[0]!.message, 'overheat: s1 temperature at 85.1235 (critical, firing)');
    assert.match(h.alerts[1]!.message, /^plain firing: s1 temperature=85\.1235 \(value > 80\)$/);
  });

  it('ids are deterministic: the same stream gives the same alerts in another engine', () => {
    const a = harness([overheat]);
    const b = harness([overheat]);
    for (const h of [a, b]) h.series([85, 70, 90, 60], 0, 1000);
    assert.equal(a.alerts.length, 4);
    assert.deepEqual(
      a.alerts.map((x) => x.id),
      b.alerts.map((x) => x.id),
    );
    assert.equal(new Set(a.alerts.map((x) => x.id)).size, 4);
  });

  it('on a window: evaluates the summary fields, ts is the window end', () => {
    const h = harness([
      { name: 'hot-1m', kind: 'threshold', on: 'window:temp-1m', when: 'mean > 80 && count >= 5' },
    ]);
    h.engine.onSummary(summary('temp-1m', 0, 60_000, { mean: 85, count: 3 }));
    assert.equal(h.alerts.length, 0);
    h.engine.onSummary(summary('temp-1m', 60_000, 60_000, { mean: 85, count: 5 }));
    assert.deepEqual(h.states(), ['firing']);
    assert.equal(h.alerts[0]!.ts, T0 + 120_000);
    assert.equal(h.alerts[0]!.value, 85, 'value is the rule field (mean by default)');
    h.engine.onSummary(summary('other', 120_000, 60_000, { mean: 10 }));
    assert.equal(h.alerts.length, 1, 'a summary of another window is not this rule’s');
    h.engine.onSummary(summary('temp-1m', 120_000, 60_000, { mean: 10 }));
    assert.deepEqual(h.states(), ['firing', 'resolved']);
  });
});
