import assert from 'node:assert/strict';
import { test } from 'node:test';
import { READING_SCOPE } from './expr.ts';
import { ruleKinds } from './registry.ts';
import { conditionAt, SpecError } from './rule.ts';
import { isValidated, ruleSpecSchema } from './schema.ts';

test('rule kinds come from the registry, in their documented order', () => {
  assert.deepEqual(ruleKinds.names(), [
    'threshold',
    'rate',
    'zscore',
    'spike',
    'changepoint',
    'flatline',
    'missing',
    'pattern',
    'anomaly',
  ]);
  const bad = ruleSpecSchema().safeParse({ name: 'x', kind: 'treshold', when: 'value > 1' });
  assert.equal(bad.success, false);
  assert.match(bad.error!.issues[0]!.message, /expected kind to be one of threshold \| rate/);
});

test('an expression is compiled once per process (issue 13): validation and the engine share it', () => {
  const a = conditionAt('when', 'value > 41', READING_SCOPE);
  const b = conditionAt('when', 'value > 41', READING_SCOPE);
  assert.equal(a, b);
  assert.equal(a({ value: 42 }), true);
  // An expression that does not compile fails the same way every time, at the key it was given.
  for (const key of ['when', 'clearWhen'])
    assert.throws(
      () => conditionAt(key, 'vale > 1', READING_SCOPE),
      (e: unknown) => e instanceof SpecError && e.key === key,
    );
});

test('specs the config validated are marked, so the engine does not parse them again', () => {
  const spec = ruleSpecSchema().parse({ name: 'r', kind: 'threshold', on: 'window:w', when: 'max > 1' });
  assert.equal(isValidated(spec), true);
  assert.deepEqual(spec.on, { window: 'w' });
  assert.equal(isValidated({ ...spec }), false);
});
