// The controller's state machine against an in-memory FleetHost (the runtime side is covered by
// test/agent/fleet.test.ts with a real agent process and broker): real keys, real state file, fake clock.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { FakeClock } from '../../shared/clock.ts';
import { configHash, signDesiredState } from '../../shared/fleet.ts';
import { nullLogger } from '../../shared/log.ts';
import type { AgentConfig } from '../config.ts';
import { FleetController } from './controller.ts';
import type { FleetHealth, FleetHost, FleetStatusFields } from './host.ts';
import { FleetStore } from './store.ts';
import { validateAgentConfig } from './validate.ts';

const ID = 'gw-1';

class MemoryHost implements FleetHost {
  reloads: AgentConfig[] = [];
  healthy = true;
  published = 0;
  handler: ((p: Buffer) => void) | null = null;
  fields: (() => FleetStatusFields) | null = null;
  async reload(config: AgentConfig) {
    this.reloads.push(config);
  }
  health(): FleetHealth {
    return {
      sources: [
        { name: 's', state: this.healthy ? 'up' : 'down', lastError: this.healthy ? undefined : 'ENOENT' },
      ],
      uplink: { configured: true, connected: true },
    };
  }
  onDownlink(h: (p: Buffer) => void) {
    this.handler = h;
  }
  statusFields(f: () => FleetStatusFields) {
    this.fields = f;
  }
  publishStatus() {
    this.published++;
  }
  get report() {
    return this.fields?.().fleet;
  }
}

function setup(fleetExtra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-ctl-'));
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = join(dir, 'fleet.pub');
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  const raw = {
    agent: { id: ID, dataDir: join(dir, 'data') },
    windows: [{ name: 'w1', type: 'tumbling', size: '10s' }],
    fleet: { publicKeyFile: pub, healthDeadline: '2s', labels: { site: 'north' }, ...fleetExtra },
  };
  const local = validateAgentConfig(raw);
  if (!local.ok) throw new Error(local.problems.join('\n'));
  const clock = new FakeClock();
  const store = new FleetStore(raw.agent.dataDir);
  const make = () =>
    new FleetController({
      agentId: ID,
      fleet: local.config.fleet!,
      localRaw: raw,
      localConfig: local.config,
      publicKey,
      store,
      log: nullLogger(),
      clock,
    });
  return { make, privateKey, clock, store, local: local.config };
}

function doc(key: KeyObject, version: number, config: Record<string, unknown>, agent = ID): Buffer {
  const d = signDesiredState(
    {
      v: 1,
      kind: 'desired',
      agent,
      version,
      rollout: `r${version}`,
      hash: configHash(config),
      issuedAt: 0,
      config,
    },
    key,
  );
  return Buffer.from(JSON.stringify(d));
}

async function settle() {
  for (let i = 0; i < 20; i++) await tick();
}

test('a signed, allowed, valid document is applied, persisted as last-known-good and reported', async () => {
  const { make, privateKey, store } = setup();
  const host = new MemoryHost();
  const ctl = make();
  ctl.attach(host);
  ctl.start();
  const w2 = [
    { name: 'w1', type: 'tumbling', size: '10s' },
    { name: 'w2', type: 'count', count: 5 },
  ];
  host.handler!(doc(privateKey, 3, { windows: w2 }));
  await settle();
  assert.equal(host.reloads.length, 1);
  assert.deepEqual(
    host.reloads[0]!.windows.map((w) => w.name),
    ['w1', 'w2'],
  );
  assert.equal(host.report?.state, 'applied');
  assert.equal(host.report?.version, 3);
  assert.deepEqual(host.report?.lastKnownGood, { version: 3, hash: configHash({ windows: w2 }) });
  assert.deepEqual(host.fields!().labels, { site: 'north' });
  assert.ok(host.published >= 2, 'pending and applied were both published');
  const st = store.read();
  assert.equal(st.lastKnownGood?.version, 3);
  assert.equal(st.pending, null);
  // The same version again (the retained document after a reconnect, or republished): nothing happens.
  host.handler!(doc(privateKey, 3, { windows: [] }));
  host.handler!(doc(privateKey, 2, { windows: [] }));
  await settle();
  assert.equal(host.reloads.length, 1);
  // A restart starts on the last-known-good.
  assert.deepEqual(
    make().startConfig.windows.map((w) => w.name),
    ['w1', 'w2'],
  );
  ctl.stop();
});

test('a document signed with another key is rejected and never applied; its version blocks nothing', async () => {
  const { make, privateKey } = setup();
  const host = new MemoryHost();
  const ctl = make();
  ctl.attach(host);
  ctl.start();
  const other = generateKeyPairSync('ed25519').privateKey;
  host.handler!(doc(other, 1_000_000, { windows: [] }));
  await settle();
  assert.equal(host.reloads.length, 0);
  assert.equal(host.report?.state, 'rejected');
  assert.match(host.report?.reason ?? '', /^unknown key: signed by key [0-9a-f]{16}$/);
  host.handler!(doc(privateKey, 1, { windows: [] }, 'gw-2'));
  await settle();
  assert.equal(host.report?.reason, 'wrong agent: document is for gw-2');
  host.handler!(doc(privateKey, 2, { windows: [] }));
  await settle();
  assert.equal(host.report?.state, 'applied', 'a real version 2 after a forged 1,000,000');
  ctl.stop();
});

test('disallowed keys and invalid configurations are rejected with the reason, one problem per key', async () => {
  const { make, privateKey, store } = setup();
  const host = new MemoryHost();
  const ctl = make();
  ctl.attach(host);
  ctl.start();
  host.handler!(doc(privateKey, 1, { agent: { id: 'evil', dataDir: '/' }, windows: [] }));
  await settle();
  assert.equal(host.report?.state, 'rejected');
  assert.equal(host.report?.reason, 'keys not allowed: agent: can never be set remotely');
  host.handler!(doc(privateKey, 2, { windows: [{ name: 'w', type: 'tumbling' }] }));
  await settle();
  assert.equal(host.report?.state, 'rejected');
  assert.equal(host.report?.reason, 'invalid: windows.0.size: required for tumbling windows');
  assert.equal(host.reloads.length, 0);
  assert.equal(store.read().seen, 2, 'a verified, refused version is not tried again');
  ctl.stop();
});

test('not healthy within the deadline: rolled back to the last-known-good, with why', async () => {
  const { make, privateKey, clock, store } = setup();
  const host = new MemoryHost();
  const ctl = make();
  ctl.attach(host);
  ctl.start();
  host.handler!(doc(privateKey, 1, { watermark: { maxOutOfOrder: '1s' } }));
  await settle();
  assert.equal(host.report?.state, 'applied');
  host.healthy = false;
  host.handler!(doc(privateKey, 2, { windows: [] }));
  await settle();
  assert.equal(host.report?.state, 'pending');
  assert.equal(store.read().pending?.version, 2);
  for (let t = 0; t < 2000 && host.report?.state === 'pending'; t += 200) {
    clock.advance(200);
    await settle();
  }
  assert.equal(host.report?.state, 'rolled_back');
  assert.equal(host.report?.version, 2);
  assert.equal(host.report?.reason, 'unhealthy after 2000 ms: source s down (ENOENT)');
  assert.equal(host.reloads.length, 3);
  assert.equal(host.reloads[2]!.watermark.maxOutOfOrder, 1000, 'back on version 1 over the local file');
  assert.deepEqual(
    host.reloads[2]!.windows.map((w) => w.name),
    ['w1'],
  );
  const st = store.read();
  assert.equal(st.pending, null);
  assert.equal(st.lastKnownGood?.version, 1);
  ctl.stop();
});

test('a process that died while a document was pending starts on the last-known-good (crashRetries: 0)', () => {
  const { make, store } = setup();
  store.write({
    v: 1,
    seen: 5,
    lastKnownGood: null,
    pending: { version: 5, hash: 'sha256:x', rollout: 'r5', config: { windows: [] }, starts: 0 },
    report: null,
  });
  const ctl = make();
  assert.deepEqual(
    ctl.startConfig.windows.map((w) => w.name),
    ['w1'],
    'the local config, not version 5',
  );
  assert.equal(ctl.statusFields().fleet?.state, 'rolled_back');
  assert.match(
    ctl.statusFields().fleet?.reason ?? '',
    /^crashed: the agent stopped while version 5 was pending \(1 start\)/,
  );
  assert.equal(store.read().pending, null);
});

test('crashRetries: 1 gives a pending document one more start, then rolls back', () => {
  const { make, store } = setup({ crashRetries: 1 });
  store.write({
    v: 1,
    seen: 5,
    lastKnownGood: null,
    pending: { version: 5, hash: 'sha256:x', rollout: 'r5', config: { windows: [] }, starts: 0 },
    report: null,
  });
  const first = make();
  assert.deepEqual(first.startConfig.windows, [], 'retried once');
  assert.equal(store.read().pending?.starts, 1);
  const second = make(); // died again
  assert.deepEqual(
    second.startConfig.windows.map((w) => w.name),
    ['w1'],
  );
  assert.match(second.statusFields().fleet?.reason ?? '', /\(2 starts\)/);
});

test('a clean stop while a document is pending is not a crash: the next start watches it again', async () => {
  const { make, privateKey, clock, store } = setup();
  const host = new MemoryHost();
  host.healthy = false;
  const ctl = make();
  ctl.attach(host);
  ctl.start();
  host.handler!(doc(privateKey, 4, { windows: [] }));
  await settle();
  assert.equal(host.report?.state, 'pending');
  ctl.stop(); // SIGTERM
  assert.equal(store.read().pending?.stoppedCleanly, true);
  const next = make();
  assert.deepEqual(next.startConfig.windows, [], 'started on the pending document, not rolled back');
  assert.equal(store.read().pending?.starts, 0, 'no death counted');
  const host2 = new MemoryHost();
  next.attach(host2);
  next.start();
  await settle();
  clock.advance(200);
  await settle();
  assert.equal(host2.report?.state, 'applied');
  assert.equal(host2.report?.version, 4);
  next.stop();
});

test('SIGHUP while a document is pending reloads the new local file with the pending document over it', async () => {
  const { make, privateKey, local } = setup();
  const host = new MemoryHost();
  host.healthy = false;
  const ctl = make();
  ctl.attach(host);
  ctl.start();
  host.handler!(doc(privateKey, 1, { watermark: { maxOutOfOrder: '2s' } }));
  await settle();
  const raw = {
    agent: local.agent,
    windows: [{ name: 'edited', type: 'tumbling', size: '1m' }],
    fleet: { publicKeyFile: local.fleet!.publicKeyFile },
  };
  const edited = validateAgentConfig(raw);
  assert.ok(edited.ok);
  await ctl.localReloaded(raw, edited.config);
  const last = host.reloads.at(-1)!;
  assert.equal(last.watermark.maxOutOfOrder, 2000, 'the pending document stays');
  assert.deepEqual(
    last.windows.map((w) => w.name),
    ['edited'],
  );
  ctl.stop();
});
