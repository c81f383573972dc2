import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthLimits } from './auth-limits.ts';

function limits(now: { t: number }, extra: Partial<ConstructorParameters<typeof AuthLimits>[0]> = {}) {
  return new AuthLimits({
    failuresPerAgent: 3,
    failuresPerAddress: 5,
    windowMs: 1000,
    concurrentChecks: 2,
    queuedChecks: 2,
    now: () => now.t,
    ...extra,
  });
}

test('an agent is locked at its failure limit, for at most one window; success clears it', () => {
  const now = { t: 0 };
  const l = limits(now);
  for (let i = 0; i < 2; i++) l.failed('gw-1', '10.0.0.1');
  assert.equal(l.check('gw-1', '10.0.0.1'), 'ok');
  now.t = 100;
  l.failed('gw-1', '10.0.0.2');
  assert.equal(l.check('gw-1', '10.0.0.9'), 'agent_locked', 'from any address');
  assert.equal(l.check('gw-2', '10.0.0.1'), 'ok', 'other agents are not affected');
  now.t = 1000; // the first two failures (t=0) leave the window
  assert.equal(l.check('gw-1', '10.0.0.1'), 'ok');
  l.failed('gw-1', '10.0.0.1');
  l.failed('gw-1', '10.0.0.1');
  assert.equal(l.check('gw-1', '10.0.0.1'), 'agent_locked');
  l.succeeded('gw-1');
  assert.equal(l.check('gw-1', '10.0.0.1'), 'ok');
});

test('an address is locked at its limit across agent ids (a username scan)', () => {
  const now = { t: 0 };
  const l = limits(now);
  for (let i = 0; i < 5; i++) l.failed(`gw-${i}`, '10.0.0.1');
  assert.equal(l.check('gw-99', '10.0.0.1'), 'address_locked');
  assert.equal(l.check('gw-99', '10.0.0.2'), 'ok');
  l.succeeded('gw-0'); // a success of one agent does not unlock the address
  assert.equal(l.check('gw-0', '10.0.0.1'), 'address_locked');
  now.t = 1001;
  assert.equal(l.check('gw-99', '10.0.0.1'), 'ok');
});

test('at most concurrentChecks run at once, queuedChecks wait, the rest are refused (null)', async () => {
  const l = limits({ t: 0 });
  let running = 0;
  let peak = 0;
  const gates: (() => void)[] = [];
  const check = () =>
    new Promise<boolean>((resolve) => {
      running++;
      peak = Math.max(peak, running);
      gates.push(() => {
        running--;
        resolve(true);
      });
    });
  const results = Array.from({ length: 5 }, () => l.run(check));
  assert.deepEqual(l.load, { running: 2, waiting: 2 });
  assert.equal(await results[4], null, 'the fifth finds the queue full');
  while (gates.length > 0 || l.load.running > 0) {
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all(results.slice(0, 4)), [true, true, true, true]);
  assert.equal(peak, 2);
  assert.deepEqual(l.load, { running: 0, waiting: 0 });
});

test('a check that throws frees its slot', async () => {
  const l = limits({ t: 0 }, { concurrentChecks: 1, queuedChecks: 1 });
  await assert.rejects(
    l.run(() => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await l.run(async () => 'ok'), 'ok');
  assert.deepEqual(l.load, { running: 0, waiting: 0 });
});

test('checks in flight count against both limits until settled (issue 12, item 8)', () => {
  const l = limits({ t: 0 });
  for (let i = 0; i < 3; i++) assert.equal(l.reserve('gw-1', '10.0.0.1'), 'ok');
  assert.equal(l.reserve('gw-1', '10.0.0.1'), 'agent_locked', 'a 4th concurrent check of gw-1 is refused');
  assert.equal(l.reserve('gw-2', '10.0.0.1'), 'ok');
  assert.equal(l.reserve('gw-3', '10.0.0.1'), 'ok');
  assert.equal(l.reserve('gw-4', '10.0.0.1'), 'address_locked', '5 in flight from this address');
  l.settle('gw-1', '10.0.0.1', true); // the right secret: clears gw-1's failures, frees its places
  assert.equal(l.reserve('gw-1', '10.0.0.2'), 'ok');
  l.settle('gw-1', '10.0.0.1', false);
  l.settle('gw-1', '10.0.0.1', null); // never checked (queue full): no failure counted
  l.settle('gw-1', '10.0.0.2', false);
  l.settle('gw-2', '10.0.0.1', false);
  l.settle('gw-3', '10.0.0.1', false);
  assert.equal(l.check('gw-1', '10.0.0.9'), 'ok', '2 failures of gw-1, limit 3');
  assert.equal(l.check('gw-9', '10.0.0.1'), 'ok', '4 failures from 10.0.0.1, limit 5');
  l.failed('gw-1', '10.0.0.3');
  assert.equal(l.check('gw-1', '10.0.0.9'), 'agent_locked');
});
