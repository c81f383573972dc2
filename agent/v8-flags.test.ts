import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AFTER_START_V8_FLAGS, setAfterStartV8Flags } from './v8-flags.ts';

/** node:sea and node:v8 stand-ins: whether this is the single executable, and the flags V8 was given. */
function builtins(isSea: boolean | undefined) {
  const set: string[] = [];
  const get = (id: string): unknown => {
    if (id === 'node:sea') return isSea === undefined ? undefined : { isSea: () => isSea };
    if (id === 'node:v8') return { setFlagsFromString: (f: string) => set.push(f) };
    throw new Error(`unexpected builtin ${id}`);
  };
  return { get, set };
}

test('the single executable gets the after-start V8 flags', () => {
  const b = builtins(true);
  assert.deepEqual(setAfterStartV8Flags(b.get), ['--heap-growing-percent=25']);
  assert.deepEqual(b.set, [...AFTER_START_V8_FLAGS]);
});

test('node and tsx runs (tests, development) keep V8 defaults, as without the execArgv', () => {
  // undefined: Node 20.11 (dev minimum) has no node:sea
  for (const isSea of [false, undefined]) {
    const b = builtins(isSea);
    assert.deepEqual(setAfterStartV8Flags(b.get), []);
    assert.deepEqual(b.set, []);
  }
});
