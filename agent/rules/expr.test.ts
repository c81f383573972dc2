import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileCondition,
  compileExpr,
  type Env,
  ExprError,
  ExprEvalError,
  READING_SCOPE,
  WINDOW_SCOPE,
} from './expr.ts';

const env: Env = { value: 85, ts: 1000, device: 'press-7', metric: 'temperature' };
const ev = (src: string, e: Env = env) => compileExpr(src, READING_SCOPE).eval(e);
const compileError = (src: string, scope = READING_SCOPE): string => {
  try {
    compileExpr(src, scope);
  } catch (e) {
    assert.ok(e instanceof ExprError, `expected ExprError, got ${e}`);
    return (e as Error).message;
  }
  assert.fail(`"${src}" compiled`);
};

describe('expr: evaluation', () => {
  it('arithmetic, precedence, unary minus, modulo', () => {
    assert.equal(ev('value + 1 * 2'), 87);
    assert.equal(ev('(value + 1) * 2'), 172);
    assert.equal(ev('-value'), -85);
    assert.equal(ev('value % 10'), 5);
    assert.equal(ev('value / 2 - 2.5'), 40);
    assert.equal(ev('1e3 + 0.5'), 1000.5);
  });

  it('comparisons and logic', () => {
    assert.equal(ev('value > 80'), true);
    assert.equal(ev('value > 85'), false);
    assert.equal(ev('value >= 85'), true);
    assert.equal(ev('value < 85 || value == 85'), true);
    assert.equal(ev('value != 85'), false);
    assert.equal(ev('!(value > 80) && true'), false);
    assert.equal(ev('device == "press-7" && metric != \'humidity\''), true);
    assert.equal(ev('device < "press-8"'), true);
  });

  it('ternary', () => {
    assert.equal(ev('value > 80 ? 1 : 2'), 1);
    assert.equal(ev('device == "x" ? "a" : "b"'), 'b');
  });

  it('functions', () => {
    assert.equal(ev('abs(-value)'), 85);
    assert.equal(ev('min(value, 3, 9)'), 3);
    assert.equal(ev('max(value, 100)'), 100);
    assert.equal(ev('sqrt(16) + floor(2.7) + ceil(2.1) + round(2.5)'), 4 + 2 + 3 + 3);
    assert.ok(Math.abs((ev('log(exp(2))') as number) - 2) < 1e-12);
  });

  it('short-circuits && and || (the right side is not evaluated)', () => {
    const c = compileCondition('value > 0 || mean > 1', WINDOW_SCOPE);
    // `mean` is null: evaluating it would throw, but the left side already decides.
    assert.equal(c({ value: 1, mean: null }), true);
    assert.throws(() => c({ value: -1, mean: null }), ExprEvalError);
  });

  it('compiles once and evaluates many times with different envs', () => {
    const c = compileCondition('value > 80', READING_SCOPE);
    assert.equal(c({ ...env, value: 81 }), true);
    assert.equal(c({ ...env, value: 80 }), false);
  });

  it('window scope has the aggregates; min/max are both fields and functions', () => {
    const c = compileExpr('max - min > 2 * stddev && max(p95, 0) > 0 && window == "t1"', WINDOW_SCOPE);
    assert.equal(c.eval({ min: 1, max: 10, stddev: 1, p95: 3, window: 't1' }), true);
  });

  it('a null field is an evaluation error, not a silent false', () => {
    const c = compileCondition('mean > 3', WINDOW_SCOPE);
    assert.throws(() => c({ mean: null }), ExprEvalError);
  });
});

describe('expr: compile-time errors', () => {
  it('unknown identifier names the identifier', () => {
    assert.match(compileError('vale > 80'), /^unknown identifier "vale"/);
    assert.match(compileError('mean > 80'), /unknown identifier "mean" \(known: value, ts, device, metric\)/);
  });

  it('unknown function, wrong arity, uncalled function', () => {
    assert.match(compileError('foo(value)'), /unknown function "foo"/);
    assert.match(compileError('abs(value, 2)'), /takes 1 argument, got 2/);
    assert.match(compileError('min()'), /takes 1 to 16 arguments, got 0/);
    assert.match(compileError('abs > 1'), /function "abs" must be called/);
  });

  it('type errors', () => {
    assert.match(compileError('device > 3'), /needs two numbers or two strings/);
    assert.match(compileError('value + "x"'), /needs a number, got a string/);
    assert.match(compileError('value && true'), /needs a boolean, got a number/);
    assert.match(compileError('!value'), /needs a boolean/);
    assert.match(compileError('-device'), /needs a number/);
    assert.match(compileError('value > 1 ? 1 : "a"'), /same type/);
    assert.match(compileError('value ? 1 : 2'), /condition of "\?:" needs a boolean/);
    assert.match(compileError('device == 1'), /same type/);
  });

  it('a condition must be boolean', () => {
    assert.throws(() => compileCondition('value + 1', READING_SCOPE), /must be a condition \(true\/false\)/);
  });

  it('unsupported operators and syntax', () => {
    assert.match(compileError('value === 1'), /"===" is not supported \(use ==\)/);
    assert.match(compileError('value & 1'), /use &&/);
    assert.match(compileError('value ** 2'), /"\*\*" is not supported/);
    assert.match(compileError('value ?? 1'), /"\?\?" is not supported/);
    assert.match(compileError('~value'), /not supported|extra expression/);
    assert.match(compileError('value > 1, true'), /extra expression/);
    assert.match(compileError('[1, 2]'), /arrays are not supported/);
    assert.match(compileError('null'), /not supported/);
    assert.match(compileError('value >'), /syntax error/);
    assert.match(compileError(''), /empty expression/);
    assert.match(compileError('1e999 > value'), /out of range/);
  });
});

describe('expr: hostile input', () => {
  const hostile = [
    'constructor',
    '__proto__',
    'prototype',
    'toString()',
    'constructor.constructor("return process")()',
    'value.constructor',
    'value["constructor"]',
    '__proto__.polluted == 1',
    'this',
    'this.process',
    'process.exit(1)',
    'require("fs")',
    'globalThis',
    'eval("1")',
    'Function("return 1")()',
    'hasOwnProperty("value")',
    '(abs).call(0, 1)',
    'abs.constructor',
    'value = 1',
    'import("fs")',
    '`$' + '{value}`', // a template literal
    'valueOf()',
    '__defineGetter__("x", abs)',
  ];
  for (const src of hostile) {
    it(`rejects ${src}`, () => {
      assert.throws(() => compileExpr(src, READING_SCOPE), ExprError);
    });
  }

  it('identifiers are looked up only as declared scope names (no prototype chain)', () => {
    const scope = new Map([['value', 'number' as const]]);
    assert.throws(() => compileExpr('toString', scope), /unknown identifier "toString"/);
    assert.throws(() => compileExpr('hasOwnProperty', scope), /unknown identifier/);
  });

  it('the env cannot smuggle values of the wrong type into an identifier', () => {
    const c = compileCondition('value > 1', READING_SCOPE);
    assert.throws(() => c({ value: '5' as unknown as number }), ExprEvalError);
    assert.throws(() => c({ value: { valueOf: () => 5 } as unknown as number }), ExprEvalError);
  });

  it('deep nesting and very long input are errors, not crashes', () => {
    // Parentheses alone add no AST depth: this compiles; what matters is that nothing but ExprError escapes.
    assert.equal(compileExpr(`${'('.repeat(1000)}1${')'.repeat(1000)} > 0`, READING_SCOPE).eval({}), true);
    assert.throws(
      () => compileExpr(`${'('.repeat(1100)}1${')'.repeat(1100)} > 0`, READING_SCOPE),
      /longer than/,
    );
    assert.throws(
      () => compileExpr(`${'abs('.repeat(300)}1${')'.repeat(300)} > 0`, READING_SCOPE),
      /nested too deeply/,
    );
    assert.throws(() => compileExpr(`${'-'.repeat(200)}1 > 0`, READING_SCOPE), /nested too deeply/);
    assert.throws(() => compileExpr(`value > ${'1+'.repeat(2000)}1`, READING_SCOPE), /longer than/);
    assert.throws(() => compileExpr(`${'!'.repeat(100)}true`, READING_SCOPE), /nested too deeply/);
  });

  it('does not pollute Object.prototype', () => {
    for (const src of ['__proto__.x == 1', 'constructor.prototype.x == 1']) {
      try {
        compileExpr(src, READING_SCOPE);
      } catch {}
    }
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  it('does not use eval or Function', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('./expr.ts', import.meta.url), 'utf8');
    const code = text.replace(/\/\/.*$/gm, '').replace('eval(env: Env): T;', '');
    assert.doesNotMatch(code, /\beval\s*\(|new\s+Function|Function\s*\(/);
  });
});
