// Uplink component tests against an in-process aedes broker on loopback (port 0), no external services.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { FakeClock } from '../../shared/clock.ts';
import { batchEnvelopeSchema, type Status, statusSchema } from '../../shared/model.ts';
import { makeTestCerts } from '../../test/helpers/certs.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { MemoryOutbox } from '../outbox/memory.ts';
import { item } from '../outbox/outbox.conformance.ts';
import type { Outbox } from '../outbox/outbox.ts';
import { SqliteOutbox } from '../outbox/sqlite.ts';
import { MqttUplink, type MqttUplinkDeps, type MqttUplinkOptions } from './mqtt-uplink.ts';
import { deadPort, TestBroker } from './test-broker.ts';

const tmp = mkdtempSync(join(tmpdir(), 'edgeflow-uplink-'));
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(tmp, { recursive: true, force: true });
});

let agentN = 0;
function status(agent: string): () => Status {
  return () => ({
    agent,
    version: '0.0.0-test',
    startedAt: 1,
    ts: Date.now(),
    clockSynced: true,
    outbox: { items: 0, bytes: 0, oldestTs: null },
    sources: {},
    counters: {},
  });
}

function makeUplink(
  outbox: Outbox,
  opts: Partial<MqttUplinkOptions> & { urls: string[] },
  deps: Pick<MqttUplinkDeps, 'registry' | 'stageLatency'> & { clock?: FakeClock } = {},
) {
  const agentId = opts.agentId ?? `gw-test-${++agentN}`;
  const up = new MqttUplink(
    {
      backoff: { minMs: 20, maxMs: 200 },
      connectTimeout: 2000,
      batch: { maxItems: 100, maxDelay: 20 },
      ...opts,
      agentId,
    },
    outbox,
    { getStatus: status(agentId), ...deps },
  );
  cleanups.push(() => up.stop());
  return { up, agentId };
}

const fill = (o: Outbox, kind: 'summaries' | 'alerts' | 'late', from: number, n: number) =>
  o.append(Array.from({ length: n }, (_, i) => item(kind, from + i)));

describe('MqttUplink', () => {
  it('fails over from a dead URL to a live one, drains everything, acks only what the broker got', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const outbox = new MemoryOutbox();
    fill(outbox, 'summaries', 0, 1000);
    fill(outbox, 'alerts', 5000, 7);
    fill(outbox, 'late', 6000, 3);
    const dead = `mqtt://127.0.0.1:${await deadPort()}`;
    const live = `mqtt://127.0.0.1:${broker.port}`;
    const registry = new Registry();
    const { up, agentId } = makeUplink(outbox, { urls: [dead, live] }, { registry });
    up.start();
    await waitFor('outbox drained', () => outbox.stats().items === 0);
    const st = up.state();
    assert.equal(st.connected, true);
    assert.equal(st.url, live);
    assert.ok(st.connectFailures >= 1, 'the dead URL was tried first');
    assert.equal(st.itemsSent, 1010, JSON.stringify(st));
    assert.equal(st.inFlight, 0);
    const ids = new Set(broker.items().map((i) => i.id));
    assert.equal(ids.size, 1010);
    // envelopes and topics
    for (const r of broker.received.filter((x) => x.kind !== 'status')) {
      assert.equal(r.topic, `edgeflow/v1/${agentId}/${r.kind}`);
      const env = batchEnvelopeSchema.parse(r.body);
      assert.equal(env.agent, agentId);
      assert.ok(env.items.length <= 100);
      assert.ok((env.items as { id: string }[]).every((i) => i.id.startsWith(r.kind)));
    }
    assert.equal(
      new Set(broker.received.map((r) => r.body.batch).filter(Boolean)).size,
      broker.received.filter((r) => r.kind !== 'status').length,
      'batch ids unique',
    );
    // alerts first, then late, then summaries (all were waiting when the link came up)
    const kinds = broker.items().map((i) => i.kind);
    assert.ok(kinds.lastIndexOf('alerts') < kinds.indexOf('late'));
    assert.ok(kinds.lastIndexOf('late') < kinds.indexOf('summaries'));
    // retained status on connect
    const s = broker.received.find((r) => r.kind === 'status');
    assert.ok(s?.retain);
    assert.equal(statusSchema.parse(s.body).agent, agentId);
    const text = await registry.metrics();
    assert.match(text, /edgeflow_agent_uplink_items_total\{kind="summaries"\} 1000/);
  });

  it('no URL reachable: keeps cycling through all URLs with backoff and connects when one comes up', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    await broker.down();
    const outbox = new MemoryOutbox();
    fill(outbox, 'alerts', 0, 2);
    const second = `mqtt://127.0.0.1:${broker.port}`;
    const { up } = makeUplink(outbox, { urls: [`mqtt://127.0.0.1:${await deadPort()}`, second] });
    up.start();
    await waitFor('two full rounds failed', () => up.state().connectFailures >= 4);
    assert.equal(up.state().connected, false);
    assert.match(up.state().lastError ?? '', /ECONNREFUSED/);
    assert.equal(outbox.stats().items, 2, 'nothing acked while down');
    await broker.up();
    await waitFor('connected to the second URL', () => up.state().connected);
    assert.equal(up.state().url, second);
    await waitFor('drained', () => outbox.stats().items === 0);
  });

  it('broker stopped mid-stream and restarted: every item arrives at least once, outbox ends empty, the backlog drains alerts first', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const outbox = new SqliteOutbox({ path: join(tmp, 'restart', 'outbox.db') });
    cleanups.push(() => outbox.close());
    fill(outbox, 'summaries', 0, 20_000);
    const { up } = makeUplink(outbox, { urls: [`mqtt://127.0.0.1:${broker.port}`], maxInFlight: 8 });
    up.start();
    await waitFor('some batches through', () => broker.items().length >= 3000, { intervalMs: 1 });
    await broker.down(); // in flight: up to 8 batches whose PUBACK never comes
    await waitFor('uplink sees the loss', () => !up.state().connected);
    const before = outbox.stats().items;
    assert.ok(before > 0 && before < 20_000, `backlog ${before}`);
    fill(outbox, 'alerts', 50_000, 42); // raised while the collector is away
    fill(outbox, 'summaries', 60_000, 500);
    await broker.up();
    await waitFor('outbox drained after restart', () => outbox.stats().items === 0, { timeoutMs: 30_000 });
    await waitFor('all PUBACKs processed', () => up.state().inFlight === 0);

    const got = broker.items();
    const ids = new Set(got.map((i) => i.id));
    for (let i = 0; i < 20_000; i++) assert.ok(ids.has(item('summaries', i).id), `summary ${i} missing`);
    for (let i = 0; i < 500; i++) assert.ok(ids.has(item('summaries', 60_000 + i).id));
    for (let i = 0; i < 42; i++) assert.ok(ids.has(item('alerts', 50_000 + i).id));
    const second = got.filter((g) => g.life === 1);
    const firstSummary = second.findIndex((g) => g.kind === 'summaries');
    const lastAlert = second.map((g) => g.kind).lastIndexOf('alerts');
    assert.ok(
      lastAlert < firstSummary,
      `alerts first in the backlog drain (last alert ${lastAlert}, first summary ${firstSummary})`,
    );
    const dups = got.length - ids.size;
    assert.ok(dups <= 8 * 100, `duplicates only from the batches in flight at the stop: ${dups}`);
    assert.ok(up.state().reconnects >= 1);
  });

  it('never more than maxInFlight batches unacknowledged, nothing re-sent while in flight', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const outbox = new MemoryOutbox();
    fill(outbox, 'summaries', 0, 1000);
    broker.hold();
    const { up } = makeUplink(outbox, {
      urls: [`mqtt://127.0.0.1:${broker.port}`],
      maxInFlight: 3,
      pollInterval: 5,
    });
    up.start();
    await waitFor('3 batches held', () => broker.heldCount >= 3);
    // let the loop poll a while (50+ polls): no 4th batch, no re-send
    const until = performance.now() + 300;
    await waitFor('polling', () => performance.now() > until);
    assert.equal(broker.items().length, 300);
    assert.equal(new Set(broker.items().map((i) => i.id)).size, 300);
    assert.equal(up.state().inFlight, 3);
    assert.equal(outbox.stats().items, 1000, 'nothing acked before PUBACK');
    broker.release(); // status publish is held too; release again as the stream goes on
    await waitFor('drained', () => {
      broker.release();
      return outbox.stats().items === 0;
    });
    assert.equal(new Set(broker.items().map((i) => i.id)).size, 1000);
    assert.equal(broker.items().length, 1000);
  });

  it('batches by count at once and by delay (monotonic clock) for a partial batch', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const { up } = makeUplink(
      outbox,
      {
        urls: [`mqtt://127.0.0.1:${broker.port}`],
        batch: { maxItems: 100, maxDelay: 1000, sendWhenIdle: false },
        statusInterval: 1e9,
      },
      { clock },
    );
    up.start();
    await waitFor('connected', () => up.state().connected);
    fill(outbox, 'summaries', 0, 250);
    up.notify();
    assert.equal(up.state().inFlightItems, 200, 'two full batches go at once');
    await waitFor('acked', () => up.state().itemsSent === 200);
    clock.advance(999);
    up.notify();
    assert.equal(up.state().inFlightItems, 0, 'the partial batch waits maxDelay');
    clock.setWall(clock.now() + 3_600_000); // a wall-clock jump changes nothing
    up.notify();
    assert.equal(up.state().inFlightItems, 0);
    clock.advance(1);
    assert.equal(up.state().inFlightItems, 50, 'sent when its head has waited maxDelay');
    fill(outbox, 'alerts', 900, 1);
    up.notify();
    assert.equal(up.state().inFlightItems, 51, 'alerts do not wait for a batch to fill');
    await waitFor('drained', () => outbox.stats().items === 0);
  });

  it('sendWhenIdle (default): a partial batch leaves at once on an idle link, and lingers only while a batch is in flight', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const stages: Record<string, number[]> = {};
    const stageLatency = {
      observe: (l: { stage?: string }, seconds: number) => {
        const k = l.stage ?? '';
        stages[k] = [...(stages[k] ?? []), seconds];
      },
    };
    const { up } = makeUplink(
      outbox,
      {
        urls: [`mqtt://127.0.0.1:${broker.port}`],
        batch: { maxItems: 100, maxDelay: 1000 },
        statusInterval: 1e9,
      },
      { clock, stageLatency },
    );
    const committed = (r: { appended: number; lastSeq?: number }) => ({
      from: r.lastSeq! - r.appended + 1,
      to: r.lastSeq!,
    });
    up.start();
    // The connect status must be acknowledged before hold(): held, it would pass for the first batch
    // (found flaky under load 16, issue 13).
    await waitFor('connected, status acknowledged', () => up.state().connected && up.state().statusSent >= 1);
    broker.hold();
    up.notify(committed(fill(outbox, 'summaries', 0, 30)));
    assert.equal(up.state().inFlightItems, 30, 'idle link: the partial batch goes at once');
    await waitFor('first batch held', () => broker.heldCount >= 1);
    up.notify(committed(fill(outbox, 'summaries', 100, 20)));
    assert.equal(up.state().inFlightItems, 30, 'a batch in flight: the next partial batch lingers');
    clock.advance(25);
    broker.release(); // the first PUBACK: the link is idle again and the lingering batch goes
    broker.hold();
    await waitFor('second batch sent', () => up.state().itemsSent === 30 && up.state().inFlightItems === 20);
    broker.release();
    await waitFor('drained', () => outbox.stats().items === 0);
    assert.deepEqual(stages.uplink_queue, [0, 0.025], 'committed → published, per batch');
    assert.equal(stages.uplink_ack?.length, 2);
    // Under load the linger is still bounded by maxDelay (what every partial batch waited before).
    broker.hold();
    fill(outbox, 'summaries', 200, 10);
    up.notify();
    await waitFor('held again', () => broker.heldCount >= 1);
    fill(outbox, 'summaries', 300, 10);
    up.notify();
    assert.equal(up.state().inFlightItems, 10);
    clock.advance(999);
    assert.equal(up.state().inFlightItems, 10);
    clock.advance(1);
    assert.equal(up.state().inFlightItems, 20, 'sent after maxDelay although a batch is in flight');
    broker.release();
    await waitFor('drained', () => outbox.stats().items === 0);
  });

  it('maxBatchBytes cuts batches by size (an oversized item goes alone)', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const outbox = new MemoryOutbox();
    outbox.append(Array.from({ length: 10 }, (_, i) => item('summaries', i, { pad: 1000 })));
    outbox.append([item('summaries', 10, { pad: 10_000 })]);
    const { up } = makeUplink(outbox, { urls: [`mqtt://127.0.0.1:${broker.port}`], maxBatchBytes: 4096 });
    up.start();
    await waitFor('drained', () => outbox.stats().items === 0);
    const sizes = broker.received.filter((r) => r.kind === 'summaries').map((r) => r.body.items!.length);
    assert.deepEqual(sizes, [3, 3, 3, 1, 1]);
  });

  it('drainRate caps items/s for summaries', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const { up } = makeUplink(
      outbox,
      {
        urls: [`mqtt://127.0.0.1:${broker.port}`],
        batch: { maxItems: 100, maxDelay: 0 },
        drainRate: 100,
        statusInterval: 1e9,
      },
      { clock },
    );
    up.start();
    await waitFor('connected', () => up.state().connected);
    fill(outbox, 'summaries', 0, 1000);
    up.notify();
    assert.equal(up.state().inFlightItems, 100, 'one batch of burst');
    await waitFor('acked', () => up.state().itemsSent === 100);
    clock.advance(500);
    assert.equal(up.state().inFlightItems, 0, '50 tokens are not enough for a batch of 100');
    clock.advance(500);
    assert.equal(up.state().inFlightItems, 100);
    fill(outbox, 'alerts', 5000, 5);
    up.notify();
    assert.equal(up.state().inFlightItems, 105, 'alerts are not throttled');
  });

  it('gzip: payload starts with the gzip magic bytes (MQTT 3.1.1) and decodes to the batch', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const outbox = new MemoryOutbox();
    fill(outbox, 'summaries', 0, 300);
    const { up } = makeUplink(outbox, {
      urls: [`mqtt://127.0.0.1:${broker.port}`],
      compress: 'gzip',
      compressThreshold: 512,
    });
    up.start();
    await waitFor('drained', () => outbox.stats().items === 0);
    const batches = broker.received.filter((r) => r.kind === 'summaries');
    assert.ok(batches.length >= 3);
    assert.ok(batches.every((b) => b.gzip));
    assert.equal(broker.received.find((r) => r.kind === 'status')?.gzip, false, 'small status stays plain');
    assert.ok(up.state().bytesSent < 300 * 60, `compressed ${up.state().bytesSent} bytes`);
  });

  it('TLS with a CA file and username/password from a file; a wrong CA or password never connects', async () => {
    const dir = join(tmp, 'tls');
    execFileSync('mkdir', ['-p', dir]);
    makeTestCerts(dir, { key: 'ec', otherCa: true });
    writeFileSync(join(dir, 'secret'), 's3cret-pw\n');
    writeFileSync(join(dir, 'wrong'), 'nope\n');

    const seen: { user?: string; pass?: string }[] = [];
    const broker = await TestBroker.start({
      tls: { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) },
      authenticate: (_client, username, password, done) => {
        seen.push({ user: username, pass: password?.toString() });
        const ok = username === 'gw-tls' && password?.toString() === 's3cret-pw';
        if (ok) done(null, true);
        else done(Object.assign(new Error('bad credentials'), { returnCode: 4 }) as never, false);
      },
    });
    cleanups.push(() => broker.close());
    const url = `mqtts://127.0.0.1:${broker.port}`;

    const outbox = new MemoryOutbox();
    fill(outbox, 'alerts', 0, 3);
    const { up } = makeUplink(outbox, {
      agentId: 'gw-tls',
      urls: [url],
      username: 'gw-tls',
      passwordFile: join(dir, 'secret'),
      ca: join(dir, 'ca.pem'),
    });
    up.start();
    await waitFor('drained over TLS', () => outbox.stats().items === 0);
    assert.deepEqual(
      seen.at(-1),
      { user: 'gw-tls', pass: 's3cret-pw' },
      'password read from the file, newline trimmed',
    );
    await up.stop();

    const badCa = makeUplink(new MemoryOutbox(), {
      agentId: 'gw-tls',
      urls: [url],
      username: 'gw-tls',
      passwordFile: join(dir, 'secret'),
      ca: join(dir, 'other-ca.pem'),
    });
    badCa.up.start();
    await waitFor('TLS failure reported', () => badCa.up.state().connectFailures >= 2);
    assert.equal(badCa.up.state().connected, false);
    assert.match(badCa.up.state().lastError ?? '', /certificate|self.signed|verify/i);
    await badCa.up.stop();

    const n = seen.length;
    const badPw = makeUplink(new MemoryOutbox(), {
      agentId: 'gw-tls',
      urls: [url],
      username: 'gw-tls',
      passwordFile: join(dir, 'wrong'),
      ca: join(dir, 'ca.pem'),
    });
    badPw.up.start();
    await waitFor('auth failure reported', () => badPw.up.state().connectFailures >= 2);
    assert.equal(badPw.up.state().connected, false);
    assert.ok(seen.length > n);
    assert.match(badPw.up.state().lastError ?? '', /Bad username or password|not authorized/i);
    await badPw.up.stop();
  });

  it('flush sends partial batches at once and reports whether everything was acknowledged', async () => {
    const broker = await TestBroker.start();
    cleanups.push(() => broker.close());
    const outbox = new MemoryOutbox();
    const { up } = makeUplink(outbox, {
      urls: [`mqtt://127.0.0.1:${broker.port}`],
      batch: { maxItems: 100, maxDelay: 3_600_000, sendWhenIdle: false },
    });
    up.start();
    await waitFor('connected', () => up.state().connected);
    fill(outbox, 'summaries', 0, 30);
    up.notify();
    assert.equal(up.state().inFlight, 0, 'waits for maxDelay');
    assert.equal(await up.flush(5000), true);
    assert.equal(outbox.stats().items, 0);
    await broker.down();
    await waitFor('down', () => !up.state().connected);
    fill(outbox, 'summaries', 100, 5);
    assert.equal(await up.flush(100), false, 'link down: gives up at the deadline');
    assert.equal(outbox.stats().items, 5, 'and keeps the items');
  });

  it('a missing password file is a configuration error at start', () => {
    const up = new MqttUplink(
      { agentId: 'gw-x', urls: ['mqtt://127.0.0.1:1'], username: 'gw-x', passwordFile: join(tmp, 'nope') },
      new MemoryOutbox(),
    );
    assert.throws(() => up.start(), { code: 'CONFIG_INVALID' });
  });
});
