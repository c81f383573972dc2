// The rule expression language (SPEC.md section 2, `when: "value > 80"`): parsed by jsep, evaluated by us.
//
// Why jsep: it is a small, maintained, dependency-free *parser only*; it never evaluates anything, so
// what an expression can do is exactly what this file's whitelist allows. No `eval`, no `new Function`,
// no property access: an identifier is looked up in a scope we declare (a Map, not an object, so
// `__proto__`, `constructor`, `toString` are simply unknown names), functions come from a Map too.
//
// Expressions are statically typed (number | string | boolean) at compile time, so a config with
// `device > 3` or `value + "x"` is rejected by check-config instead of silently evaluating to false.
// Compile once (`compileExpr`), evaluate many times (`.eval(env)`): the AST is turned into closures.
import jsep from 'jsep';

export type ExprType = 'number' | 'string' | 'boolean';
export type ExprValue = number | string | boolean;
/** Declared identifiers and their types. */
export type Scope = ReadonlyMap<string, ExprType>;
/** Values for one evaluation; only names declared in the scope are ever read. */
export type Env = Readonly<Record<string, ExprValue | null | undefined>>;

export interface Compiled<T extends ExprValue = ExprValue> {
  readonly source: string;
  readonly type: ExprType;
  eval(env: Env): T;
}

/** A configuration error in an expression (reported by check-config as `rules.N.when: <message>`). */
export class ExprError extends Error {
  override name = 'ExprError';
}

/** A problem while evaluating (e.g. a window aggregate that is null because the window was empty). */
export class ExprEvalError extends Error {
  override name = 'ExprEvalError';
}

export const MAX_EXPR_LENGTH = 2048;
const MAX_DEPTH = 64;

type Fn = (env: Env) => ExprValue;
interface Node {
  type: ExprType;
  fn: Fn;
}

interface FnDef {
  min: number;
  max: number;
  impl: (args: number[]) => number;
}

const FUNCTIONS: ReadonlyMap<string, FnDef> = new Map<string, FnDef>([
  ['abs', { min: 1, max: 1, impl: (a) => Math.abs(a[0]!) }],
  ['sqrt', { min: 1, max: 1, impl: (a) => Math.sqrt(a[0]!) }],
  ['log', { min: 1, max: 1, impl: (a) => Math.log(a[0]!) }],
  ['exp', { min: 1, max: 1, impl: (a) => Math.exp(a[0]!) }],
  ['round', { min: 1, max: 1, impl: (a) => Math.round(a[0]!) }],
  ['floor', { min: 1, max: 1, impl: (a) => Math.floor(a[0]!) }],
  ['ceil', { min: 1, max: 1, impl: (a) => Math.ceil(a[0]!) }],
  ['min', { min: 1, max: 16, impl: (a) => Math.min(...a) }],
  ['max', { min: 1, max: 16, impl: (a) => Math.max(...a) }],
]);

const ARITH = new Set(['+', '-', '*', '/', '%']);
const ORDER = new Set(['<', '<=', '>', '>=']);
const EQUALITY = new Set(['==', '!=']);
const LOGIC = new Set(['&&', '||']);

/**
 * Compiles `source` against `scope`. `expect` (usually 'boolean' for a condition) is checked too.
 * Throws ExprError with a message meant for the config author.
 */
export function compileExpr(source: string, scope: Scope, expect?: ExprType): Compiled {
  if (typeof source !== 'string') throw new ExprError('expected an expression string');
  if (source.trim() === '') throw new ExprError('empty expression');
  if (source.length > MAX_EXPR_LENGTH)
    throw new ExprError(`expression longer than ${MAX_EXPR_LENGTH} characters`);
  let ast: jsep.Expression;
  try {
    ast = jsep(source);
  } catch (e) {
    if (e instanceof RangeError) throw new ExprError('expression nested too deeply');
    throw new ExprError(`syntax error: ${(e as Error).message}`);
  }
  const node = build(ast, scope, 0);
  if (expect && node.type !== expect) {
    throw new ExprError(
      expect === 'boolean'
        ? `must be a condition (true/false), but it gives a ${node.type}`
        : `must give a ${expect}, not a ${node.type}`,
    );
  }
  const fn = node.fn;
  return { source, type: node.type, eval: fn };
}

/** Compiles a condition (boolean expression) and returns a plain predicate. */
export function compileCondition(source: string, scope: Scope): (env: Env) => boolean {
  const c = compileExpr(source, scope, 'boolean');
  return c.eval as (env: Env) => boolean;
}

function knownNames(scope: Scope): string {
  return [...scope.keys()].join(', ');
}

function build(n: jsep.Expression, scope: Scope, depth: number): Node {
  if (depth > MAX_DEPTH) throw new ExprError('expression nested too deeply');
  const d = depth + 1;
  switch (n.type) {
    case 'Literal': {
      const v = (n as jsep.Literal).value;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new ExprError(`number ${(n as jsep.Literal).raw} is out of range`);
        return { type: 'number', fn: () => v };
      }
      if (typeof v === 'string') return { type: 'string', fn: () => v };
      if (typeof v === 'boolean') return { type: 'boolean', fn: () => v };
      throw new ExprError(
        `literal ${(n as jsep.Literal).raw} is not supported (numbers, "strings", true, false)`,
      );
    }
    case 'Identifier': {
      const name = (n as jsep.Identifier).name;
      const t = scope.get(name);
      if (t === undefined) {
        if (FUNCTIONS.has(name))
          throw new ExprError(`function "${name}" must be called, e.g. ${name}(value)`);
        throw new ExprError(`unknown identifier "${name}" (known: ${knownNames(scope)})`);
      }
      return { type: t, fn: identifier(name, t) };
    }
    case 'UnaryExpression': {
      const u = n as jsep.UnaryExpression;
      const arg = build(u.argument, scope, d);
      if (u.operator === '-') {
        need(arg, 'number', `operator "-"`);
        const f = arg.fn as (e: Env) => number;
        return { type: 'number', fn: (e) => -f(e) };
      }
      if (u.operator === '!') {
        need(arg, 'boolean', `operator "!"`);
        const f = arg.fn as (e: Env) => boolean;
        return { type: 'boolean', fn: (e) => !f(e) };
      }
      throw new ExprError(`operator "${u.operator}" is not supported`);
    }
    case 'BinaryExpression':
      return binary(n as jsep.BinaryExpression, scope, d);
    case 'ConditionalExpression': {
      const c = n as jsep.ConditionalExpression;
      const test = build(c.test, scope, d);
      need(test, 'boolean', 'the condition of "?:"');
      const a = build(c.consequent, scope, d);
      const b = build(c.alternate, scope, d);
      if (a.type !== b.type)
        throw new ExprError(`both branches of "?:" must have the same type, got ${a.type} and ${b.type}`);
      const t = test.fn as (e: Env) => boolean;
      const fa = a.fn;
      const fb = b.fn;
      return { type: a.type, fn: (e) => (t(e) ? fa(e) : fb(e)) };
    }
    case 'CallExpression': {
      const c = n as jsep.CallExpression;
      if (c.callee.type !== 'Identifier') throw new ExprError('only the built-in functions can be called');
      const name = (c.callee as jsep.Identifier).name;
      const def = FUNCTIONS.get(name);
      if (!def)
        throw new ExprError(`unknown function "${name}" (known: ${[...FUNCTIONS.keys()].join(', ')})`);
      const nargs = c.arguments.length;
      if (nargs < def.min || nargs > def.max) {
        const want = def.min === def.max ? `${def.min}` : `${def.min} to ${def.max}`;
        throw new ExprError(
          `function "${name}" takes ${want} argument${def.max === 1 ? '' : 's'}, got ${nargs}`,
        );
      }
      const args = c.arguments.map((a) => {
        const x = build(a, scope, d);
        need(x, 'number', `arguments of ${name}()`);
        return x.fn as (e: Env) => number;
      });
      const impl = def.impl;
      if (args.length === 1) {
        const a0 = args[0]!;
        return { type: 'number', fn: (e) => impl([a0(e)]) };
      }
      return { type: 'number', fn: (e) => impl(args.map((f) => f(e))) };
    }
    case 'MemberExpression':
      throw new ExprError('property access ("a.b", "a[b]") is not supported');
    case 'ThisExpression':
      throw new ExprError('"this" is not supported');
    case 'ArrayExpression':
      throw new ExprError('arrays are not supported');
    case 'Compound':
    case 'SequenceExpression':
      throw new ExprError('unexpected extra expression (missing operator?)');
    default:
      throw new ExprError(`unsupported syntax (${String(n.type)})`);
  }
}

function identifier(name: string, t: ExprType): Fn {
  // `name` is one of the scope's own keys (checked above), never a user-chosen property name.
  return (env) => {
    const v = env[name];
    if (typeof v !== t)
      throw new ExprEvalError(`"${name}" has no ${t} value here (${v === null ? 'null' : typeof v})`);
    return v as ExprValue;
  };
}

function need(x: Node, t: ExprType, what: string): void {
  if (x.type !== t) throw new ExprError(`${what} needs a ${t}, got a ${x.type}`);
}

function binary(b: jsep.BinaryExpression, scope: Scope, d: number): Node {
  const op = b.operator;
  if (!ARITH.has(op) && !ORDER.has(op) && !EQUALITY.has(op) && !LOGIC.has(op)) {
    const hint =
      op === '==='
        ? ' (use ==)'
        : op === '!=='
          ? ' (use !=)'
          : op === '&'
            ? ' (use &&)'
            : op === '|'
              ? ' (use ||)'
              : '';
    throw new ExprError(`operator "${op}" is not supported${hint}`);
  }
  const l = build(b.left, scope, d);
  const r = build(b.right, scope, d);
  if (LOGIC.has(op)) {
    need(l, 'boolean', `operator "${op}"`);
    need(r, 'boolean', `operator "${op}"`);
    const fl = l.fn as (e: Env) => boolean;
    const fr = r.fn as (e: Env) => boolean;
    return { type: 'boolean', fn: op === '&&' ? (e) => fl(e) && fr(e) : (e) => fl(e) || fr(e) };
  }
  if (EQUALITY.has(op)) {
    if (l.type !== r.type)
      throw new ExprError(`operator "${op}" compares values of the same type, got ${l.type} and ${r.type}`);
    const fl = l.fn;
    const fr = r.fn;
    return { type: 'boolean', fn: op === '==' ? (e) => fl(e) === fr(e) : (e) => fl(e) !== fr(e) };
  }
  if (ORDER.has(op)) {
    if (l.type !== r.type || l.type === 'boolean') {
      throw new ExprError(`operator "${op}" needs two numbers or two strings, got ${l.type} and ${r.type}`);
    }
    const fl = l.fn as (e: Env) => number;
    const fr = r.fn as (e: Env) => number;
    switch (op) {
      case '<':
        return { type: 'boolean', fn: (e) => fl(e) < fr(e) };
      case '<=':
        return { type: 'boolean', fn: (e) => fl(e) <= fr(e) };
      case '>':
        return { type: 'boolean', fn: (e) => fl(e) > fr(e) };
      default:
        return { type: 'boolean', fn: (e) => fl(e) >= fr(e) };
    }
  }
  need(l, 'number', `operator "${op}"`);
  need(r, 'number', `operator "${op}"`);
  const fl = l.fn as (e: Env) => number;
  const fr = r.fn as (e: Env) => number;
  switch (op) {
    case '+':
      return { type: 'number', fn: (e) => fl(e) + fr(e) };
    case '-':
      return { type: 'number', fn: (e) => fl(e) - fr(e) };
    case '*':
      return { type: 'number', fn: (e) => fl(e) * fr(e) };
    case '/':
      return { type: 'number', fn: (e) => fl(e) / fr(e) };
    default:
      return { type: 'number', fn: (e) => fl(e) % fr(e) };
  }
}

/** Identifiers available to rules evaluated per reading. */
export const READING_SCOPE: Scope = new Map<string, ExprType>([
  ['value', 'number'],
  ['ts', 'number'],
  ['device', 'string'],
  ['metric', 'string'],
]);

/** Identifiers available to rules evaluated per window summary (`value` is the rule's `field`, `ts` the window end). */
export const WINDOW_SCOPE: Scope = new Map<string, ExprType>([
  ['count', 'number'],
  ['min', 'number'],
  ['max', 'number'],
  ['mean', 'number'],
  ['sum', 'number'],
  ['stddev', 'number'],
  ['first', 'number'],
  ['last', 'number'],
  ['p50', 'number'],
  ['p95', 'number'],
  ['anomaly_max', 'number'],
  ['late', 'number'],
  ['value', 'number'],
  ['ts', 'number'],
  ['device', 'string'],
  ['metric', 'string'],
  ['window', 'string'],
]);

export function extendScope(scope: Scope, extra: Record<string, ExprType>): Scope {
  const m = new Map(scope);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}
