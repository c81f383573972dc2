// The rollout engine without a broker: `publish` records what would go on each downlink, reports are
// fed as statuses. Stages, halt threshold, resume, rollback, persistence across a new controller.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { type Clock, FakeClock, systemClock } from '../../shared/clock.ts';
import { type FleetReport, verifyDesiredState } from '../../shared/fleet.ts';
import { nullLogger } from '../../shared/log.ts';
import type { Status } from '../../shared/model.ts';
import { fleetConfigSchema } from './config.ts';
import { FleetController } from './controller.ts';

function bed(n: number, rollout: Record<string, unknown>, clock: Clock = systemClock) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-fleetctl-'));
  mkdirSync(join(dir, 'fleet'));
  mkdirSync(join(dir, 'data'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const cfg = fleetConfigSchema.parse({
    dir: join(dir, 'fleet'),
    signingKeyFile: join(dir, 'key.pem'),
    autoApply: false,
    rollout,
  });
  const ids = Array.from({ length: n }, (_, i) => `gw-${String(i).padStart(2, '0')}`);
  const sent: { agent: string; version: number; config: Record<string, unknown> }[] = [];
  const make = () =>
    new FleetController(cfg, {
      log: nullLogger(),
      clock,
      registry: new Registry(),
      dataDir: join(dir, 'data'),
      knownAgents: () => ids,
      publish: async (topic, payload) => {
        const agent = topic.split('/')[2]!;
        const v = verifyDesiredState(payload, agent, publicKey);
        assert.ok(v.ok, 'every published document verifies with the pinned key');
        sent.push({ agent, version: v.doc.version, config: v.doc.config });
      },
    });
  const write = (windowSize: string) =>
    writeFileSync(
      join(dir, 'fleet/base.yaml'),
      `kind: group\nname: base\nmatch: { agents: ["gw-*"] }\nconfig: { windows: [{ name: w, match: { metric: t }, type: tumbling, size: ${windowSize} }] }\n`,
    );
  return { dir, ids, sent, make, write, cleanup: () => rmSync(dir, { recursive: true }) };
}

function status(
  agent: string,
  version: number,
  state: FleetReport['state'],
  agentVersion = 't',
  update?: Status['update'],
): Status {
  return {
    agent,
    version: agentVersion,
    startedAt: 0,
    ts: Date.now(),
    clockSynced: true,
    outbox: { items: 0, bytes: 0, oldestTs: null },
    sources: {},
    counters: {},
    fleet: { version, hash: 'sha256:x', state, at: Date.now() },
    ...(update ? { update } : {}),
  };
}

function report(fc: FleetController, agent: string, version: number, state: FleetReport['state']) {
  fc.onStatus(status(agent, version, state));
}

const settle = () => new Promise((r) => setImmediate(r));

test('canary first, then the rest; halt over maxFailureShare; resume sends the rest; rollback returns the old config', async () => {
  const b = bed(10, { canaryShare: 0.2, maxFailureShare: 0.4 });
  try {
    const fc = b.make();
    fc.open();
    await fc.start();
    for (const id of b.ids) fc.onConnect(id);
    b.write('60s');
    const r1 = await fc.apply();
    assert.ok(r1.ok && r1.rollout);
    assert.deepEqual(
      b.sent.map((s) => s.agent),
      ['gw-00', 'gw-01'],
      'canary: 20% of 10, online, by id',
    );
    report(fc, 'gw-00', 1, 'applied');
    await settle();
    assert.equal(b.sent.length, 2, 'the rest waits for every online canary agent');
    report(fc, 'gw-01', 1, 'applied');
    await settle();
    assert.equal(b.sent.length, 10);
    for (const id of b.ids.slice(2)) report(fc, id, 1, 'applied');
    await settle();
    assert.equal(fc.currentRollout()!.state, 'complete');

    b.sent.length = 0;
    b.write('90s');
    const r2 = await fc.apply();
    assert.ok(r2.ok && r2.rollout?.version === 2);
    report(fc, 'gw-00', 2, 'rolled_back');
    await settle();
    // 1 of 2 sent = 0.5 > 0.4: halted, nobody else gets version 2.
    assert.equal(fc.currentRollout()!.state, 'halted');
    report(fc, 'gw-01', 2, 'applied');
    await settle();
    assert.equal(b.sent.length, 2);
    // The same content again does not start a new rollout past the halted canary.
    const again = await fc.apply();
    assert.ok(again.ok && again.rollout?.id === 'r2' && again.changed.length === 0);
    assert.equal(b.sent.length, 2);

    const res = await fc.resume();
    assert.ok(res.ok);
    assert.equal(b.sent.length, 10, 'resume published the rest');

    b.sent.length = 0;
    const rb = await fc.rollback();
    assert.ok(rb.ok && rb.rollout?.kind === 'rollback' && rb.rollout.version === 3);
    assert.equal(b.sent.length, 10, 'a rollback has no canary stage: all at once');
    assert.ok(b.sent.every((s) => s.version === 3 && JSON.stringify(s.config).includes('"60s"')));
    fc.stop();

    // A new controller on the same data dir: versions and documents survive; all are re-published.
    b.sent.length = 0;
    const fc2 = b.make();
    fc2.open();
    await fc2.start();
    assert.equal(fc2.view().version, 3);
    assert.equal(b.sent.length, 10);
    assert.ok(b.sent.every((s) => s.version === 3));
    fc2.stop();
  } finally {
    b.cleanup();
  }
});

test('an offline canary agent does not hold the rollout once the online ones reported', async () => {
  const b = bed(10, { canaryShare: 0.2, maxFailureShare: 0.5 });
  try {
    const fc = b.make();
    fc.open();
    await fc.start();
    fc.onConnect('gw-05'); // only one online: canary = gw-05 and the first offline one (gw-00)
    b.write('60s');
    await fc.apply();
    assert.deepEqual(b.sent.map((s) => s.agent).sort(), ['gw-00', 'gw-05']);
    report(fc, 'gw-05', 1, 'applied');
    await settle();
    assert.equal(b.sent.length, 10);
    fc.stop();
  } finally {
    b.cleanup();
  }
});

/**
 * 10 agents online, a rollout with a 2-agent canary and offlineGrace 2m on a fake clock; 1 s later the
 * second canary agent drops (restarting into what it was sent) and the first reports applied.
 */
async function canaryWithOneRestarting() {
  const clock = new FakeClock(Date.now());
  const b = bed(10, { canaryShare: 0.2, maxFailureShare: 0.5, offlineGrace: '2m' }, clock);
  const fc = b.make();
  fc.open();
  await fc.start();
  for (const id of b.ids) fc.onConnect(id);
  b.write('60s');
  await fc.apply();
  const canary = b.sent.map((s) => s.agent);
  assert.equal(canary.length, 2);
  clock.advance(1000);
  fc.onDisconnect(canary[1]!);
  report(fc, canary[0]!, 1, 'applied');
  await settle();
  return { b, fc, clock, restarting: canary[1]! };
}

test('a canary agent that goes offline after its stage was sent (restarting into a release) holds it for offlineGrace', async () => {
  const { b, fc, clock } = await canaryWithOneRestarting();
  try {
    assert.equal(b.sent.length, 2, 'held by the restarting canary agent');
    clock.advance(60_000);
    await settle();
    assert.equal(b.sent.length, 2, 'still within its grace');
    clock.advance(61_000); // grace over: the rollout goes on without its report
    await settle();
    assert.equal(b.sent.length, 10);
  } finally {
    fc.stop();
    b.cleanup();
  }
});

test('a canary agent that comes back within its grace and reports lets the rollout go on at once', async () => {
  const { b, fc, clock, restarting } = await canaryWithOneRestarting();
  try {
    clock.advance(5000);
    fc.onConnect(restarting);
    report(fc, restarting, 1, 'applied');
    await settle();
    assert.equal(b.sent.length, 10);
  } finally {
    fc.stop();
    b.cleanup();
  }
});

test('rollout.canary selects the canary by labels; canaryShare 0 means no canary stage', async () => {
  const b = bed(6, { canary: { labels: { ring: 'canary' } }, maxFailureShare: 0.5 });
  try {
    const fc = b.make();
    fc.open();
    await fc.start();
    for (const id of b.ids) {
      fc.onConnect(id);
      fc.onStatus({
        agent: id,
        version: 't',
        startedAt: 0,
        ts: Date.now(),
        clockSynced: true,
        outbox: { items: 0, bytes: 0, oldestTs: null },
        sources: {},
        counters: {},
        labels: id === 'gw-04' ? { ring: 'canary' } : {},
      });
    }
    b.write('60s');
    await fc.apply();
    assert.deepEqual(
      b.sent.map((s) => s.agent),
      ['gw-04'],
    );
    fc.stop();
  } finally {
    b.cleanup();
  }
  const b0 = bed(6, { canaryShare: 0 });
  try {
    const fc = b0.make();
    fc.open();
    await fc.start();
    b0.write('60s');
    const r = await fc.apply();
    assert.ok(r.ok && r.rollout?.state === 'rolling');
    assert.equal(b0.sent.length, 6, 'no canary: everyone at once');
    fc.stop();
  } finally {
    b0.cleanup();
  }
});

test('a document carrying update.version is through only when the agent runs that release; a rolled-back release halts the canary', async () => {
  const b = bed(4, { canaryShare: 0.5, maxFailureShare: 0.4 });
  try {
    const fc = b.make();
    fc.open();
    await fc.start();
    for (const id of b.ids) fc.onConnect(id);
    writeFileSync(
      join(b.dir, 'fleet/base.yaml'),
      'kind: group\nname: base\nmatch: { agents: ["gw-*"] }\nconfig: { update: { version: 2.0.0 } }\n',
    );
    const r1 = await fc.apply();
    assert.ok(r1.ok && r1.rollout, JSON.stringify(r1));
    assert.deepEqual(
      b.sent.map((s) => s.config),
      [{ update: { version: '2.0.0' } }, { update: { version: '2.0.0' } }],
    );
    // Config applied, still on the old release: pending, the rest waits.
    fc.onStatus(
      status('gw-00', 1, 'applied', '1.0.0', {
        running: '1.0.0',
        wanted: '2.0.0',
        state: 'downloading',
        at: 1,
      }),
    );
    fc.onStatus(
      status('gw-01', 1, 'applied', '1.0.0', { running: '1.0.0', wanted: '2.0.0', state: 'trial', at: 1 }),
    );
    await settle();
    assert.equal(fc.progress(fc.currentRollout()!).pending, 2);
    assert.equal(b.sent.length, 2);
    // One canary agent runs 2.0.0, the other rolled the release back: 1 of 2 failed > 0.4, halted.
    fc.onStatus(status('gw-00', 1, 'applied', '2.0.0', { running: '2.0.0', state: 'committed', at: 2 }));
    fc.onStatus(
      status('gw-01', 1, 'applied', '1.0.0', {
        running: '1.0.0',
        wanted: '2.0.0',
        state: 'rolled_back',
        reason: 'not healthy within 120000 ms: uplink',
        at: 2,
      }),
    );
    await settle();
    const r = fc.currentRollout()!;
    assert.equal(r.state, 'halted');
    const p = fc.progress(r);
    assert.equal(p.applied, 1);
    assert.equal(p.rolled_back, 1);
    assert.equal(b.sent.length, 2, 'the rest never got the release');
    const view = fc.view().agents.find((a) => a.id === 'gw-01')!;
    assert.equal(view.update?.state, 'rolled_back');
    fc.stop();
  } finally {
    b.cleanup();
  }
});
