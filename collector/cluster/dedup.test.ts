// The dedup window against a naive model (STYLE.md: oracles for the core), and the changelog it emits
// replayed into a fresh window (what a forwarder does when it takes a partition over).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DedupWindow } from './dedup.ts';
import type { ChangelogOp } from './log.ts';

/** Obviously right: per agent an array, most recent last. */
class NaiveWindow {
  private readonly agents = new Map<string, string[]>();
  constructor(private readonly perAgent: number) {}
  see(agent: string, key: string): boolean {
    const l = this.agents.get(agent) ?? [];
    this.agents.set(agent, l);
    const i = l.indexOf(key);
    if (i >= 0) {
      l.splice(i, 1);
      l.push(key);
      return false;
    }
    l.push(key);
    while (l.length > this.perAgent) l.shift();
    return true;
  }
  has(agent: string, key: string): boolean {
    return this.agents.get(agent)?.includes(key) ?? false;
  }
}

test('DedupWindow = naive window; the changelog replays to the same state', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 12 })), { maxLength: 200 }),
      (perAgent, seq) => {
        const w = new DedupWindow(perAgent);
        const n = new NaiveWindow(perAgent);
        const ops: ChangelogOp[] = [];
        for (const [agent, k] of seq) {
          assert.equal(w.see(agent, `k${k}`, ops), n.see(agent, `k${k}`));
        }
        const restored = new DedupWindow(perAgent);
        for (const op of ops) restored.apply(op.key, op.value);
        for (const agent of ['a', 'b', 'c']) {
          for (let k = 0; k <= 12; k++) {
            assert.equal(w.has(agent, `k${k}`), n.has(agent, `k${k}`));
            assert.equal(restored.has(agent, `k${k}`), n.has(agent, `k${k}`));
          }
        }
        assert.equal(restored.keys, w.keys);
        // The restored window goes on deciding like the original (same order, so the same evictions).
        const more: ChangelogOp[] = [];
        for (const [agent, k] of seq.slice(0, 30)) {
          assert.equal(restored.see(agent, `k${k}`, more), w.see(agent, `k${k}`, more));
        }
      },
    ),
  );
});

test('a re-send inside the window is a duplicate; one evicted by newer keys is not remembered', () => {
  const w = new DedupWindow(3);
  const ops: ChangelogOp[] = [];
  assert.equal(w.see('gw', 'x#0', ops), true);
  assert.equal(w.see('gw', 'x#0', ops), false);
  assert.equal(w.see('gw', 'x#1', ops), true, 'another rev is another item');
  assert.equal(w.see('other', 'x#0', ops), true, 'windows are per agent');
  for (const k of ['a', 'b', 'c']) w.see('gw', k, ops);
  assert.equal(w.has('gw', 'x#0'), false);
  assert.ok(
    ops.some((o) => o.value === null),
    'evictions are tombstones in the changelog',
  );
});
