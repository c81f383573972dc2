import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, fingerprint } from './fingerprint.ts';
import { compileGlob, compileMatch, MatchCache } from './match.ts';

test('glob: * and ? only, anchored, regex characters literal, / and leading dots not special', () => {
  assert.equal(compileGlob(undefined)('anything'), true);
  assert.equal(compileGlob('*')('plant/a/b'), true);
  assert.equal(compileGlob('*')('any\nthing'), true);
  const g = compileGlob('press-*');
  assert.equal(g('press-7'), true);
  assert.equal(g('press-'), true);
  assert.equal(g('xpress-7'), false);
  assert.equal(compileGlob('temp*')('temperature'), true);
  assert.equal(compileGlob('s?')('s1'), true);
  assert.equal(compileGlob('s?')('s12'), false);
  assert.equal(compileGlob('a.b')('axb'), false);
  assert.equal(compileGlob('a.b')('a.b'), true);
  assert.equal(compileGlob('line(1)+*')('line(1)+x'), true);
  assert.equal(compileGlob('plant/(1)+')('plant/(1)+'), true);
  assert.equal(compileGlob('*temp*')('plant/.hidden/temperature'), true);
  assert.equal(compileGlob('temperature')('temperature'), true);
  assert.equal(compileGlob('temperature')('temperature2'), false);
});

test('match cache: per key, what matches; bounded', () => {
  const items = [
    { n: 'a', m: compileMatch({ device: 'p-*' }) },
    { n: 'b', m: compileMatch({ metric: 'temp' }) },
  ];
  const c = new MatchCache(items, (i) => i.m, 2);
  assert.deepEqual(
    c.get('p-1', 'temp').map((i) => i.n),
    ['a', 'b'],
  );
  assert.deepEqual(
    c.get('x', 'temp').map((i) => i.n),
    ['b'],
  );
  assert.deepEqual(c.get('x', 'hum'), []);
  assert.equal(c.get('p-1', 'temp').length, 2, 'still right after the cache started over');
});

test('fingerprint: key order and undefined members do not matter, values do', () => {
  assert.equal(canonicalJson({ b: 1, a: [1, { d: 2, c: undefined }] }), '{"a":[1,{"d":2}],"b":1}');
  assert.equal(fingerprint({ a: 1, b: 2 }), fingerprint({ b: 2, a: 1 }));
  assert.notEqual(fingerprint({ a: 1 }), fingerprint({ a: 2 }));
  assert.match(fingerprint('x'), /^[0-9a-f]{16}$/);
  // Window checkpoints from before issue 13 hashed JSON.stringify of an array of primitives: the same bytes.
  const canon = ['tumbling', 60000, null, null, null, ['count', 'max'], '*', 'temp'];
  assert.equal(canonicalJson(canon), JSON.stringify(canon));
});
