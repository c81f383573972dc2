// Issue 13, in-process: the runtime's control surface for the fleet and update helpers (issue 15, 16):
// reload() resolves once a validated config is applied (or says why not), keeps what a stopping source
// still delivers, and health() reports sources open, uplink and the last checkpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqtt from 'mqtt';
import type { AgentConfig } from '../../agent/config.ts';
import { agentSchema } from '../../agent/load-config.ts';
import { MemoryOutbox } from '../../agent/outbox/memory.ts';
import { Agent } from '../../agent/runtime/agent.ts';
import type { RawFrame, Source, SourceHooks, SourceStatus } from '../../agent/sources/source.ts';
import { TestBroker } from '../../agent/uplink/test-broker.ts';
import { FakeClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { downlinkTopic } from '../../shared/topics.ts';
import { waitFor } from '../helpers/wait.ts';

/** A source whose stop() still delivers what it had buffered, as an MQTT client closing its socket may. */
class DrainingSource implements Source {
  onFrame: ((f: RawFrame) => void) | null = null;
  /** Frames delivered during stop(), after an await. */
  onStop: RawFrame[] = [];
  state: 'up' | 'down' = 'up';
  constructor(
    readonly name: string,
    readonly type: 'serial' | 'mqtt' | 'mqtt-broker',
  ) {}
  async start(onFrame: (f: RawFrame) => void, _hooks?: SourceHooks): Promise<void> {
    this.onFrame = onFrame;
  }
  send(body: unknown, receivedAt: number): void {
    this.onFrame!({ payload: Buffer.from(JSON.stringify(body)), receivedAt, ack: () => {} });
  }
  pause(): void {}
  resume(): void {}
  async stop(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    for (const f of this.onStop) this.onFrame!(f);
  }
  status(): SourceStatus {
    return { name: this.name, type: this.type, state: this.state, framesIn: 0, reconnects: 0 };
  }
}

function config(topics = ['x/#']): AgentConfig {
  return agentSchema.parse({
    agent: { id: 'ctl-test', dataDir: '/nonexistent-not-used' },
    sources: [{ type: 'mqtt', name: 'mq', url: 'mqtt://127.0.0.1:1', topics, format: 'json' }],
    watermark: { maxOutOfOrder: '100ms', idleTimeout: '1s' },
    windows: [{ name: 'w10s', type: 'tumbling', size: '10s', aggregates: ['count', 'sum'] }],
    checkpoint: { interval: '1s' },
  }) as AgentConfig;
}

async function build(clock: FakeClock) {
  const sources: DrainingSource[] = [];
  const outbox = new MemoryOutbox();
  const agent = new Agent(config(), {
    log: nullLogger(),
    version: 'test',
    clock,
    outbox,
    sourceFactory: (c) => {
      const s = new DrainingSource(c.name, c.type);
      sources.push(s);
      return s;
    },
  });
  return { agent, outbox, sources };
}

test('reload: a frame a source delivers while it stops is kept in the window state (the snapshot is taken after the awaits)', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12, 0, 0));
  const { agent, outbox, sources } = await build(clock);
  await agent.start();
  const t0 = clock.now();
  sources[0]!.send({ device: 'd1', metric: 't', value: 1, ts: t0 }, t0);
  sources[0]!.onStop = [
    {
      payload: Buffer.from(JSON.stringify({ device: 'd1', metric: 't', value: 2, ts: t0 + 1 })),
      receivedAt: t0,
    },
  ];
  const res = await agent.reload(config(['y/#']));
  assert.deepEqual(res, { applied: true, sourcesChanged: true, uplinkChanged: false });
  assert.equal(sources.length, 2, 'the changed source was restarted');
  clock.advance(15_000); // the window ends and the idle timeout moves the watermark past it
  const sums = outbox
    .peek('summaries', 1000)
    .map((s) => s.body as { id: string; rev: number; count: number; sum: number });
  const last = new Map<string, { rev: number; count: number; sum: number }>();
  for (const s of sums) if ((last.get(s.id)?.rev ?? -1) < s.rev) last.set(s.id, s);
  assert.equal(last.size, 1);
  const [w] = [...last.values()];
  assert.equal(w!.count, 2, 'both readings, the one delivered during stop() included');
  assert.equal(w!.sum, 3);
  await agent.stop(0);
});

test('reload: refused for a different agent.id (nothing changes) and when not running; reloads run one after another', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12, 0, 0));
  const { agent, sources } = await build(clock);
  assert.deepEqual(await agent.reload(config()), { applied: false, reason: 'agent is not running' });
  await agent.start();
  const other = { ...config(), agent: { ...config().agent, id: 'someone-else' } } as AgentConfig;
  const refused = await agent.reload(other);
  assert.equal(refused.applied, false);
  assert.match((refused as { reason: string }).reason, /agent\.id/);
  assert.equal(sources.length, 1, 'sources untouched');
  const [a, b] = await Promise.all([agent.reload(config(['a/#'])), agent.reload(config(['b/#']))]);
  assert.equal(a.applied && a.sourcesChanged, true);
  assert.equal(b.applied && b.sourcesChanged, true);
  assert.equal(sources.length, 3, 'each reload restarted the source once, in turn');
  await agent.stop(0);
});

test('health: sources open, uplink (none configured), last checkpoint time, running', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12, 0, 0));
  const { agent, sources } = await build(clock);
  assert.equal(agent.health().running, false);
  await agent.start();
  let h = agent.health();
  assert.equal(h.running, true);
  assert.equal(h.sourcesOpen, 1);
  assert.equal(h.sourcesTotal, 1);
  assert.deepEqual(h.sources, [{ name: 'mq', type: 'mqtt', state: 'up', open: true }]);
  assert.equal(h.uplinkConnected, null);
  assert.equal(h.uplinkLastError, null);
  assert.equal(h.lastCheckpointAt, null, 'no checkpoint yet');
  assert.equal(h.clockSynced, true);
  sources[0]!.send({ device: 'd1', metric: 't', value: 1, ts: clock.now() }, clock.now());
  clock.advance(1_000);
  h = agent.health();
  assert.equal(h.lastCheckpointAt, clock.now(), 'the timer checkpoint at 1 s');
  assert.equal(h.checkpointFailing, 0);
  sources[0]!.state = 'down';
  assert.equal(agent.health().sourcesOpen, 0);
  assert.equal(agent.health().sources[0]!.state, 'down');
  // Fleet control adds its fields to the status (wire and /status).
  assert.equal(agent.wireStatus().labels, undefined);
  agent.setStatusFields(() => ({ labels: { site: 'plant-3' } }));
  assert.deepEqual(agent.wireStatus().labels, { site: 'plant-3' });
  assert.deepEqual(agent.status().labels, { site: 'plant-3' });
  await agent.stop(0);
  assert.equal(agent.health().running, false);
});

test('downlink through the agent: subscribeDownlink survives a reload that rebuilds the uplink; publishStatusNow; health sees the link', async () => {
  const broker = await TestBroker.start();
  const sources: DrainingSource[] = [];
  const withUplink = (statusInterval: string) =>
    agentSchema.parse({
      ...config(),
      agent: { id: 'ctl-down', dataDir: '/nonexistent-not-used' },
      uplink: { urls: [`mqtt://127.0.0.1:${broker.port}`], statusInterval },
    }) as AgentConfig;
  const agent = new Agent(withUplink('1h'), {
    log: nullLogger(),
    version: 'test',
    outbox: new MemoryOutbox(),
    sourceFactory: (c) => {
      const s = new DrainingSource(c.name, c.type);
      sources.push(s);
      return s;
    },
  });
  const topic = downlinkTopic('ctl-down');
  const got: string[] = [];
  const off = agent.subscribeDownlink(topic, (_t, p) => got.push(p.toString('utf8')));
  const sender = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'collector-side' });
  try {
    await agent.start();
    await waitFor('uplink connected', () => agent.health().uplinkConnected === true);
    const deliver = async (n: number) => {
      const before = got.length;
      // Until the SUBACK is in, a publish may find no subscriber: publish until one arrives.
      await waitFor(`message ${n}`, async () => {
        if (got.length === before) await sender.publishAsync(topic, `{"n":${n}}`, { qos: 1 });
        return got.length > before;
      });
      assert.equal(got.at(-1), `{"n":${n}}`);
    };
    await deliver(1);
    const res = await agent.reload(withUplink('2h'));
    assert.deepEqual(res, { applied: true, sourcesChanged: false, uplinkChanged: true });
    await waitFor('new uplink connected', () => agent.health().uplinkConnected === true);
    await deliver(2);
    const statuses = () => broker.received.filter((r) => r.kind === 'status').length;
    const n = statuses();
    assert.equal(agent.publishStatusNow(), true);
    await waitFor('status on demand', () => statuses() > n);
    off();
    await agent.stop(0);
    assert.equal(agent.publishStatusNow(), false, 'stopped: no uplink');
  } finally {
    await sender.endAsync(true);
    await agent.stop(0);
    await broker.close();
  }
});
