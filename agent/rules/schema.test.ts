import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { describeIssues } from '../../shared/model.ts';
import { compileRuleSpecs, type RuleSpec, ruleSpecSchema, ruleSpecsSchema } from './schema.ts';

function problems(raw: unknown[]): string[] {
  const r = compileRuleSpecs(raw);
  return 'problems' in r ? r.problems : [];
}

describe('rule spec schema', () => {
  it('accepts the SPEC.md sample rule and normalises it', () => {
    const r = compileRuleSpecs([
      {
        name: 'overheat',
        match: { metric: 'temperature' },
        on: 'reading',
        kind: 'threshold',
        when: 'value > 80',
        for: '30s',
        severity: 'critical',
      },
    ]);
    assert.ok('specs' in r, JSON.stringify(r));
    const s = r.specs[0]! as Extract<RuleSpec, { kind: 'threshold' }>;
    assert.equal(s.for, 30_000);
    assert.equal(s.on, 'reading');
  });

  it('normalises on: "window:name" and {window: name} alike; defaults severity and match', () => {
    const a = ruleSpecSchema().parse({
      name: 'a',
      kind: 'threshold',
      on: 'window:temp-1m',
      when: 'mean > 1',
    });
    const b = ruleSpecSchema().parse({
      name: 'a',
      kind: 'threshold',
      on: { window: 'temp-1m' },
      when: 'mean > 1',
    });
    assert.deepEqual(a, b);
    assert.deepEqual(a.on, { window: 'temp-1m' });
    assert.equal(a.severity, 'warning');
    assert.deepEqual(a.match, {});
  });

  it('parsing is idempotent (the engine re-parses validated specs)', () => {
    const once = ruleSpecSchema().parse({
      name: 'z',
      kind: 'zscore',
      on: 'window:w',
      field: 'p95',
      for: '1m',
    });
    assert.deepEqual(ruleSpecSchema().parse(once), once);
  });

  it('reports expression errors at the rule key, in the form check-config prints', () => {
    assert.deepEqual(
      problems([
        { name: 'a', kind: 'threshold', when: 'value > 1' },
        { name: 'b', kind: 'threshold', when: 'value > 1' },
        { name: 'c', kind: 'threshold', when: 'vale > 80' },
      ]),
      ['rules[2].when: unknown identifier "vale" (known: value, ts, device, metric)'],
    );
    const res = ruleSpecsSchema().safeParse([{ name: 'c', kind: 'threshold', when: 'value >' }]);
    assert.ok(!res.success);
    assert.match(describeIssues(res.error, 'rules')[0]!, /^rules\.0\.when: syntax error/);
  });

  it('checks clearWhen, and rate conditions see `rate`', () => {
    assert.match(
      problems([{ name: 'a', kind: 'threshold', when: 'value > 1', clearWhen: 'rate < 1' }])[0]!,
      /^rules\[0\]\.clearWhen: unknown identifier "rate"/,
    );
    assert.deepEqual(problems([{ name: 'a', kind: 'rate', when: 'abs(rate) > 5' }]), []);
  });

  it('window fields are only known to window rules', () => {
    assert.match(
      problems([{ name: 'a', kind: 'threshold', when: 'p95 > 1' }])[0]!,
      /unknown identifier "p95"/,
    );
    assert.deepEqual(
      problems([{ name: 'a', kind: 'threshold', on: 'window:w', when: 'p95 > 1 && window == "w"' }]),
      [],
    );
    assert.match(
      problems([{ name: 'a', kind: 'zscore', field: 'p95' }])[0]!,
      /^rules\[0\]\.field: .*only applies to rules with on: window/,
    );
  });

  it('names the kinds when kind is wrong, and the allowed keys when a key is misspelt', () => {
    assert.deepEqual(problems([{ name: 'a', kind: 'thresold', when: 'value > 1' }]), [
      'rules[0].kind: expected kind to be one of threshold | rate | zscore | spike | changepoint | flatline | missing | pattern | anomaly',
    ]);
    assert.match(
      problems([{ name: 'a', kind: 'zscore', threshhold: 3 }])[0]!,
      /^rules\[0\]: unknown key "threshhold" for kind zscore \(allowed: .*threshold/,
    );
    assert.match(
      problems([{ name: 'a', kind: 'missing', after: '1m', for: '1m' }])[0]!,
      /unknown key "for" for kind missing/,
    );
  });

  it('required kind keys say what they are for', () => {
    assert.deepEqual(problems([{ name: 'a', kind: 'flatline' }]), [
      'rules[0].for: required: how long the value must stay unchanged, e.g. 10m',
    ]);
    assert.deepEqual(problems([{ name: 'a', kind: 'missing' }]), [
      'rules[0].after: required: how long a key may stay silent, e.g. 2m',
    ]);
    assert.deepEqual(problems([{ name: 'a', kind: 'threshold' }]), [
      'rules[0].when: required: the alert condition, e.g. "value > 80"',
    ]);
    assert.deepEqual(problems([{ name: 'a', kind: 'pattern', when: 'value == 0' }]), [
      'rules[0].count: required: how many matching events fire the alert',
      'rules[0].within: required: the sliding event-time window, e.g. 5m',
    ]);
  });

  it('validates durations, numbers, severity, on, message placeholders, names', () => {
    assert.match(
      problems([{ name: 'a', kind: 'threshold', when: 'value > 1', for: '30 seconds' }])[0]!,
      /^rules\[0\]\.for: invalid duration/,
    );
    assert.match(
      problems([{ name: 'a', kind: 'missing', after: 0 }])[0]!,
      /^rules\[0\]\.after: expected a duration above 0/,
    );
    assert.match(
      problems([{ name: 'a', kind: 'zscore', mode: 'ewma', alpha: 1.5 }])[0]!,
      /^rules\[0\]\.alpha:/,
    );
    assert.match(
      problems([{ name: 'a', kind: 'spike', window: 10, warmup: 20 }])[0]!,
      /^rules\[0\]\.warmup: must be at most window/,
    );
    assert.match(
      problems([{ name: 'a', kind: 'threshold', when: 'value > 1', severity: 'fatal' }])[0]!,
      /^rules\[0\]\.severity:/,
    );
    assert.deepEqual(problems([{ name: 'a', kind: 'threshold', when: 'value > 1', on: 'windows' }]), [
      'rules[0].on: expected "reading" or "window:<window name>"',
    ]);
    assert.match(
      problems([{ name: 'a', kind: 'threshold', when: 'value > 1', message: '{devce} hot' }])[0]!,
      /^rules\[0\]\.message: unknown placeholder \{devce\}/,
    );
    assert.match(problems([{ name: 'a b', kind: 'threshold', when: 'value > 1' }])[0]!, /^rules\[0\]\.name:/);
  });

  it('never throws on junk, whatever the shape', () => {
    for (const junk of [
      null,
      1,
      'x',
      [],
      { kind: 'threshold' },
      { name: 'a', kind: 'threshold', when: 5 },
      { name: 'a', kind: 'zscore', window: -1, warmup: 'x' },
      { name: 'a', kind: 'spike', window: 1 },
    ]) {
      assert.ok(problems([junk]).length > 0, JSON.stringify(junk));
    }
  });

  it('rule names are unique', () => {
    assert.deepEqual(
      problems([
        { name: 'a', kind: 'threshold', when: 'value > 1' },
        { name: 'a', kind: 'missing', after: '1m' },
      ]),
      ['rules[1].name: duplicate rule name "a" (also rules.0)'],
    );
  });

  it('reports every problem of every rule, not just the first', () => {
    const p = problems([
      { name: 'a', kind: 'threshold', when: 'vale > 1' },
      { name: 'b', kind: 'flatline' },
      { name: 'c', kind: 'pattern', when: 'x', count: 0, within: '1m' },
    ]);
    assert.deepEqual(
      p.map((x) => x.split(':')[0]),
      ['rules[0].when', 'rules[1].for', 'rules[2].count', 'rules[2].when'],
    );
  });
});

describe('README sample configs', () => {
  const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('there is one sample per kind', () => {
    const kinds = blocks.flatMap((b) => (parse(b) as { rules: { kind: string }[] }).rules.map((r) => r.kind));
    assert.deepEqual(kinds.sort(), [
      'anomaly',
      'changepoint',
      'flatline',
      'missing',
      'pattern',
      'rate',
      'spike',
      'threshold',
      'zscore',
    ]);
  });

  for (const [i, b] of blocks.entries()) {
    it(`sample ${i + 1} is a valid rules: list`, () => {
      const doc = parse(b) as { rules: unknown[] };
      assert.deepEqual(problems(doc.rules), []);
    });
  }
});
