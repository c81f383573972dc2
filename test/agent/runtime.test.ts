// Issue 4, in-process: the runtime (agent/runtime/agent.ts) driven by a FakeClock, fake sources and the
// in-memory outbox. Clocks (unsynced wall clock at 1970, NTP step, future timestamps), back-pressure
// (MQTT paused, serial dropped with a counter), disk-full checkpoints, corrupt checkpointed state, and
// the uplink's reconnect backoff surviving wall-clock steps.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import type { AgentConfig } from '../../agent/config.ts';
import { agentSchema } from '../../agent/load-config.ts';
import { MemoryOutbox } from '../../agent/outbox/memory.ts';
import { Agent } from '../../agent/runtime/agent.ts';
import { decodeCheckpointValue, encodeCheckpointValue } from '../../agent/runtime/checkpoint-codec.ts';
import { engineCheckpoints, WINDOW_PART_PREFIX } from '../../agent/runtime/checkpoint-parts.ts';
import { BUILD_DATE_MS } from '../../agent/runtime/clock-guard.ts';
import type { RawFrame, Source, SourceHooks, SourceStatus } from '../../agent/sources/source.ts';
import { MqttUplink } from '../../agent/uplink/mqtt-uplink.ts';
import { FakeClock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { nullLogger } from '../../shared/log.ts';
import { metricValue } from '../helpers/agent-process.ts';
import { waitFor } from '../helpers/wait.ts';

class FakeSource implements Source {
  onFrame: ((f: RawFrame) => void) | null = null;
  hooks: SourceHooks = {};
  paused = false;
  pauses = 0;
  acked = 0;
  constructor(
    readonly name: string,
    readonly type: 'serial' | 'mqtt' | 'mqtt-broker',
  ) {}
  async start(onFrame: (f: RawFrame) => void, hooks?: SourceHooks): Promise<void> {
    this.onFrame = onFrame;
    this.hooks = hooks ?? {};
  }
  /** Delivers one frame (a real MQTT source would not while paused; the runtime must cope for serial). */
  send(payload: unknown, receivedAt: number, qos0 = false): void {
    const frame: RawFrame = {
      payload: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)),
      receivedAt,
    };
    if (this.type !== 'serial' && !qos0) frame.ack = () => void this.acked++;
    this.onFrame!(frame);
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  async stop(): Promise<void> {}
  status(): SourceStatus {
    return { name: this.name, type: this.type, state: 'up', framesIn: 0, reconnects: 0 };
  }
}

function config(over: Record<string, unknown> = {}): AgentConfig {
  return agentSchema.parse({
    agent: { id: 'rt-test', dataDir: '/nonexistent-not-used' },
    sources: [
      { type: 'serial', name: 'line', path: '/dev/null', format: 'json' },
      { type: 'mqtt', name: 'mq', url: 'mqtt://127.0.0.1:1', topics: ['x/#'], format: 'json' },
    ],
    watermark: { maxOutOfOrder: '100ms', idleTimeout: '1s' },
    windows: [{ name: 'w1s', type: 'tumbling', size: '1s', aggregates: ['count', 'sum'] }],
    rules: [
      {
        name: 'hot',
        match: { metric: 't' },
        on: 'reading',
        kind: 'threshold',
        when: 'value > 100',
        severity: 'critical',
      },
    ],
    checkpoint: { interval: '1s' },
    ...over,
  }) as AgentConfig;
}

async function build(clock: FakeClock, cfg = config(), outbox = new MemoryOutbox()) {
  const sources = new Map<string, FakeSource>();
  const agent = new Agent(cfg, {
    log: nullLogger(),
    version: 'test',
    clock,
    outbox,
    sourceFactory: (c) => {
      const s = new FakeSource(c.name, c.type);
      sources.set(c.name, s);
      return s;
    },
  });
  await agent.start();
  return { agent, outbox, serial: sources.get('line')!, mqtt: sources.get('mq')! };
}

const st = (a: Agent) => a.status() as Record<string, any>;
const summaries = (o: MemoryOutbox) =>
  o
    .peek('summaries', 100_000)
    .map((s) => s.body as { device: string; count: number; window: { start: number; end: number } });

test('clock at 1970: arrival-time readings held (clockSynced false, no 1970 windows); after the NTP step they are stamped and windowed', async () => {
  const clock = new FakeClock(5_000); // 1970-01-01T00:00:05Z, a gateway without RTC before NTP
  const { agent, outbox, serial } = await build(clock);
  assert.equal(st(agent).clockSynced, false);
  for (let i = 0; i < 20; i++) {
    serial.send({ device: 'd1', metric: 't', value: i }, clock.now()); // no ts: arrival time
    clock.advance(100);
  }
  // A device timestamp before limits.minEventTime (default 2000-01-01) is refused, not windowed.
  serial.send({ device: 'd1', metric: 't', value: 1, ts: Date.UTC(1999, 11, 31) }, clock.now());
  clock.advance(5_000);
  const s1 = st(agent);
  assert.equal(s1.heldUnsynced, 20);
  assert.equal(s1.counters.readingsIn, 0);
  assert.equal(summaries(outbox).length, 0, 'no summary while the clock is unsynced');
  assert.equal(
    metricValue(await agent.metrics.registry.metrics(), 'edgeflow_agent_bad_frames_total', {
      reason: 'timestamp_too_old',
    }),
    1,
  );
  // The held readings are in the checkpoint (a crash now would not lose them).
  assert.equal(JSON.parse(decodeCheckpointValue(outbox.readCheckpoint('held')!)).length, 20);

  const now = Date.UTC(2026, 10, 22, 3, 0, 0);
  clock.setWall(now);
  clock.advance(3_000);
  const s2 = st(agent);
  assert.equal(s2.clockSynced, true);
  assert.equal(s2.heldUnsynced, 0);
  assert.equal(s2.counters.readingsIn, 20);
  const sums = summaries(outbox);
  assert.ok(sums.length > 0);
  assert.equal(
    sums.reduce((a, s) => a + s.count, 0),
    20,
  );
  for (const s of sums) {
    assert.ok(s.window.start >= BUILD_DATE_MS, `summary dated ${new Date(s.window.start).toISOString()}`);
    assert.ok(
      s.window.end <= clock.now() + 1000,
      `summary in the future: ${new Date(s.window.end).toISOString()}`,
    );
  }
  // Stamped with their arrival: the 20 readings span ~2 s before the step (and 5 s of waiting), not "now".
  assert.ok(sums.some((s) => s.window.start < now - 5_000));
  const m = await agent.metrics.registry.metrics();
  assert.equal(metricValue(m, 'edgeflow_agent_clock_jumps_total'), 1);
  assert.equal(metricValue(m, 'edgeflow_agent_clock_synced'), 1);

  // A reading stamped an hour in the future is refused and counted.
  serial.send({ device: 'd1', metric: 't', value: 5, ts: clock.now() + 3_600_000 }, clock.now());
  assert.equal(st(agent).counters.futureRefused, 1);
  assert.equal(
    metricValue(await agent.metrics.registry.metrics(), 'edgeflow_agent_bad_frames_total', {
      reason: 'timestamp_in_future',
    }),
    1,
  );
  await agent.stop(0);
});

test('back-pressure: checkpoints failing (disk full) → MQTT paused and not acked, serial dropped with a counter; all acked after recovery', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const cfg = config({ limits: { maxPendingFrames: 50 } });
  const outbox = new MemoryOutbox();
  const { agent, serial, mqtt } = await build(clock, cfg, outbox);
  outbox.failWrites = new EdgeflowError('STORE_WRITE_FAILED', 'ENOSPC (test)', { retriable: true });
  const ts = () => clock.now();
  for (let i = 0; i < 30; i++) mqtt.send({ device: 'm1', metric: 't', value: i, ts: ts() }, ts());
  clock.advance(1_500); // a checkpoint attempt fails
  assert.equal(mqtt.acked, 0, 'nothing acked while the checkpoint is not written');
  assert.ok(st(agent).counters.checkpointFailures >= 1);
  for (let i = 0; i < 20; i++) mqtt.send({ device: 'm1', metric: 't', value: i, ts: ts() }, ts());
  assert.equal(mqtt.paused, true, 'MQTT source paused at maxPendingFrames');
  assert.equal(st(agent).paused, true);
  // Serial cannot be paused without uncounted loss: the runtime drops and counts.
  assert.equal(serial.paused, false);
  for (let i = 0; i < 10; i++) serial.send({ device: 's1', metric: 't', value: i, ts: ts() }, ts());
  let m = await agent.metrics.registry.metrics();
  assert.equal(metricValue(m, 'edgeflow_agent_readings_dropped_total', { reason: 'backpressure' }), 10);
  assert.equal(st(agent).counters.droppedBackpressure, 10);
  assert.ok(metricValue(m, 'edgeflow_agent_checkpoints_total', { result: 'error' }) >= 1);
  assert.ok(metricValue(m, 'edgeflow_agent_outbox_write_errors_total') >= 1);

  // Space is back: the next checkpoint writes everything, acks all 50 frames, resumes the source.
  outbox.failWrites = null;
  clock.advance(1_500);
  assert.equal(mqtt.acked, 50);
  assert.equal(mqtt.paused, false);
  assert.equal(st(agent).paused, false);
  clock.advance(3_000);
  const total = summaries(outbox).reduce((a, s) => a + s.count, 0);
  assert.equal(total, 50, 'every MQTT reading accepted before and during the failure is in a summary');
  m = await agent.metrics.registry.metrics();
  assert.ok(metricValue(m, 'edgeflow_agent_checkpoints_total', { result: 'ok' }) >= 1);
  await agent.stop(0);
});

test('maxPendingFrames on a healthy disk: a checkpoint at the limit, no back-pressure (no pause, no counter)', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const { agent, mqtt } = await build(clock, config({ limits: { maxPendingFrames: 50 } }));
  const ts = () => clock.now();
  for (let i = 0; i < 120; i++) mqtt.send({ device: 'm1', metric: 't', value: i, ts: ts() }, ts());
  // Issue 14: it paused, wrote, resumed, and counted a back-pressure event at every limit reached.
  assert.equal(mqtt.pauses, 0, 'never paused');
  assert.equal(mqtt.acked, 100, 'the frames up to each limit acked by the checkpoint written there');
  assert.equal(st(agent).pendingFrames, 20);
  assert.equal(st(agent).paused, false);
  const m = await agent.metrics.registry.metrics();
  assert.equal(metricValue(m, 'edgeflow_agent_backpressure_total'), 0);
  assert.equal(metricValue(m, 'edgeflow_agent_checkpoints_total', { result: 'ok' }), 2);
  await agent.stop(0);
});

test('maxPendingFrames counts the frames that wait for a checkpoint: QoS 0 frames force none, serial and QoS 1 do', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const outbox = new MemoryOutbox();
  const { agent, mqtt, serial } = await build(clock, config({ limits: { maxPendingFrames: 50 } }), outbox);
  const ok = async () =>
    metricValue(await agent.metrics.registry.metrics(), 'edgeflow_agent_checkpoints_total', { result: 'ok' });
  const ts = () => clock.now();
  for (let i = 0; i < 120; i++) mqtt.send({ device: 'm1', metric: 't', value: i, ts: ts() }, ts(), true);
  assert.equal(await ok(), 0, 'QoS 0 frames wait for nothing: no checkpoint forced');
  assert.equal(st(agent).pendingFrames, 120);
  for (let i = 0; i < 60; i++) serial.send({ device: 's1', metric: 't', value: i, ts: ts() }, ts());
  assert.equal(await ok(), 1, 'serial readings at risk: a checkpoint at the 50th');
  assert.equal(st(agent).sources.line.atRisk, 10);
  // Failing checkpoints: every frame counts again, and at the limit the sources pause.
  outbox.failWrites = new EdgeflowError('STORE_WRITE_FAILED', 'ENOSPC (test)', { retriable: true });
  clock.advance(1_000); // the timer's checkpoint fails (10 frames pending)
  for (let i = 0; i < 40; i++) mqtt.send({ device: 'm1', metric: 't', value: i, ts: ts() }, ts(), true);
  assert.equal(mqtt.paused, true, 'paused at 50 frames behind a failing disk, QoS 0 included');
  outbox.failWrites = null;
  clock.advance(1_000);
  assert.equal(mqtt.paused, false);
  await agent.stop(0);
});

test('after a back-pressure pause, idle windows close on processing time: readings stamped on the engines clock', async () => {
  // The engines run on the processing clock (it stands still while sources are paused); the monotonic
  // instant ingress hands them per frame must be on that clock too. It was the base clock's, ahead by
  // every paused interval, so after a 10 s pause an idle device's window closed 10 s late.
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const outbox = new MemoryOutbox();
  const { agent, mqtt } = await build(clock, config({ limits: { maxPendingFrames: 5 } }), outbox);
  outbox.failWrites = new EdgeflowError('STORE_WRITE_FAILED', 'ENOSPC (test)', { retriable: true });
  for (let i = 0; i < 5; i++)
    mqtt.send({ device: 'm1', metric: 't', value: i, ts: clock.now() }, clock.now());
  assert.equal(mqtt.paused, true);
  clock.advance(10_000); // paused: processing time stands still
  outbox.failWrites = null;
  clock.advance(1_000); // the timer's checkpoint succeeds, the source resumes
  assert.equal(mqtt.paused, false);
  clock.advance(3_000); // m1's windows close (idle)
  const t = clock.now();
  mqtt.send({ device: 'm2', metric: 't', value: 1, ts: t }, t);
  const closed = () => summaries(outbox).filter((s) => s.device === 'm2').length;
  clock.advance(2_000); // idleTimeout 1 s (+ ticks and the group commit): m2's window closes
  assert.equal(closed(), 1, "m2's window closed after idleTimeout of processing time, not 10 s later");
  await agent.stop(0);
});

test('serial readings since the last checkpoint are reported at risk; nothing changed → no checkpoint write', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const outbox = new MemoryOutbox();
  let appends = 0;
  const append = outbox.append.bind(outbox);
  outbox.append = (items, cp) => {
    appends++;
    return append(items, cp);
  };
  const { agent, serial } = await build(clock, config(), outbox);
  for (let i = 0; i < 7; i++)
    serial.send({ device: 's1', metric: 't', value: i, ts: clock.now() }, clock.now());
  assert.equal(st(agent).sources.line.atRisk, 7);
  clock.advance(250); // gauges are refreshed by the 250 ms tick
  assert.equal(
    metricValue(await agent.metrics.registry.metrics(), 'edgeflow_agent_readings_at_risk', {
      source: 'line',
    }),
    7,
  );
  clock.advance(1_000);
  assert.equal(st(agent).sources.line.atRisk, 0);
  clock.advance(5_000); // windows close and are written; after that nothing changes
  const before = appends;
  clock.advance(10_000);
  assert.equal(appends, before, 'idle agent wrote checkpoints');
  assert.ok(
    metricValue(await agent.metrics.registry.metrics(), 'edgeflow_agent_checkpoints_total', {
      result: 'skipped',
    }) >= 9,
  );
  await agent.stop(0);
});

test('metrics: source-dropped frames (onBadFrame), late events dropped/forwarded per window, rule maxKeys from limits.maxKeys', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const cfg = config({
    windows: [
      { name: 'drop', type: 'tumbling', size: '1s', aggregates: ['count'] },
      { name: 'fwd', type: 'tumbling', size: '1s', aggregates: ['count'], lateEvents: 'forward' },
    ],
    limits: { maxKeys: 2 },
  });
  const { agent, serial } = await build(clock, cfg);
  serial.hooks.onBadFrame!('too_long');
  const t0 = clock.now();
  serial.send({ device: 'd1', metric: 't', value: 1, ts: t0 }, t0);
  clock.advance(3_000);
  serial.send({ device: 'd1', metric: 't', value: 2, ts: t0 + 3_000 }, clock.now());
  serial.send({ device: 'd1', metric: 't', value: 3, ts: t0 }, clock.now()); // 3 s late, lateness 0
  // maxKeys 2 per rule: a third (device, metric) key of the rule is ignored and counted.
  for (const d of ['d2', 'd3'])
    serial.send({ device: d, metric: 't', value: 1, ts: clock.now() }, clock.now());
  clock.advance(1_000);
  const m = await agent.metrics.registry.metrics();
  assert.equal(metricValue(m, 'edgeflow_agent_bad_frames_total', { source: 'line', reason: 'too_long' }), 1);
  assert.equal(metricValue(m, 'edgeflow_agent_late_events_total', { window: 'drop', action: 'dropped' }), 1);
  assert.equal(metricValue(m, 'edgeflow_agent_late_events_total', { window: 'fwd', action: 'forwarded' }), 1);
  assert.ok(metricValue(m, 'edgeflow_agent_readings_dropped_total', { reason: 'rule_max_keys' }) >= 1);
  assert.ok(
    metricValue(m, 'edgeflow_agent_readings_dropped_total', { reason: 'max_keys' }) >= 1,
    'window maxKeys counted too',
  );
  await agent.stop(0);
});

test('corrupt checkpointed window/rule state (STORE_CORRUPT) starts fresh with a counter, not a crash', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const outbox = new MemoryOutbox();
  outbox.append(
    [],
    new Map([
      ['windows', JSON.stringify({ v: 99 })],
      ['rules', '{"not json'],
    ]),
  );
  const { agent, serial } = await build(clock, config(), outbox);
  assert.equal(st(agent).counters.stateResets, 2);
  const m = await agent.metrics.registry.metrics();
  assert.equal(metricValue(m, 'edgeflow_agent_state_resets_total', { state: 'windows' }), 1);
  assert.equal(metricValue(m, 'edgeflow_agent_state_resets_total', { state: 'rules' }), 1);
  serial.send({ device: 'd1', metric: 't', value: 1, ts: clock.now() }, clock.now());
  clock.advance(3_000);
  assert.equal(
    summaries(outbox).reduce((a, s) => a + s.count, 0),
    1,
    'runs normally afterwards',
  );
  await agent.stop(0);
});

test('uplink reconnect backoff runs on the monotonic clock: wall-clock steps (+10 y, -10 y) neither stall nor skip retries', async () => {
  // A port with nothing listening: every connect fails at once (ECONNREFUSED).
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const up = new MqttUplink(
    { agentId: 'rt-up', urls: [`mqtt://127.0.0.1:${port}`], backoff: { minMs: 1000, maxMs: 2000 } },
    new MemoryOutbox(),
    { clock, log: nullLogger(), random: () => 0 },
  );
  up.start();
  try {
    await waitFor('first connect failure', () => up.state().connectFailures >= 1);
    clock.setWall(clock.now() + 10 * 365 * 86_400_000);
    clock.advance(999);
    await new Promise((r) => setTimeout(r, 50)); // let a (wrongly) scheduled connect surface
    assert.equal(up.state().connectFailures, 1, 'a forward wall-clock step triggered a retry early');
    clock.advance(1);
    await waitFor('second attempt after 1 s of monotonic time', () => up.state().connectFailures >= 2);
    clock.setWall(clock.now() - 20 * 365 * 86_400_000);
    clock.advance(2_000);
    await waitFor(
      'third attempt despite the wall clock going back 20 years',
      () => up.state().connectFailures >= 3,
    );
  } finally {
    await up.stop();
  }
});

test('checkpointed engine state: header rows plus bucket rows of devices and of rule keys (issue 14), restoring to the same run as the single rows (deflated or plain JSON) older agents wrote', async () => {
  const t0 = Date.UTC(2026, 10, 22);
  const clock = new FakeClock(t0);
  const { agent, outbox, serial } = await build(clock);
  const feed = (s: FakeSource, c: FakeClock, from: number, n: number) => {
    for (let i = from; i < from + n; i++) {
      for (let d = 0; d < 40; d++)
        s.send({ device: `dev-${d}`, metric: 't', value: i * 0.37 + d, ts: c.now() }, c.now());
      c.advance(100);
    }
  };
  feed(serial, clock, 0, 25); // 2.5 s: windows open for 40 keys at the last checkpoint
  const rows = outbox.readCheckpoints(WINDOW_PART_PREFIX);
  assert.equal(rows.length, 2, '40 devices in 2 bucket rows');
  assert.ok(
    rows.every(([, v]) => v.startsWith('z1:')),
    'bucket rows are deflated',
  );
  const header = JSON.parse(decodeCheckpointValue(outbox.readCheckpoint('windows')!));
  assert.deepEqual(header.devices, [], 'the header holds no devices');
  await agent.stop(0);
  // The whole state of the final checkpoint as one snapshot per engine: what an agent before issue 14
  // stored under `windows` and `rules`.
  const parted = engineCheckpoints(clock);
  const full = JSON.stringify(parted.windows.read(outbox));
  assert.equal(JSON.parse(full).devices.length, 40);
  const rulesFull = JSON.stringify(parted.rules.read(outbox));

  const run = async (entries: [string, string][]) => {
    const ob = new MemoryOutbox();
    ob.append([], new Map(entries));
    const c = new FakeClock(clock.now());
    const b = await build(c, config(), ob);
    assert.equal(st(b.agent).counters.stateResets, 0);
    feed(b.serial, c, 25, 30);
    c.advance(3_000);
    await b.agent.stop(0);
    return summaries(ob);
  };
  const fromParts = await run(outbox.readCheckpoints(''));
  const fromCompressed = await run([
    ['windows', encodeCheckpointValue(full)],
    ['rules', encodeCheckpointValue(rulesFull)],
  ]);
  const fromPlain = await run([
    ['windows', full],
    ['rules', rulesFull],
  ]);
  assert.ok(fromParts.length > 0);
  assert.deepEqual(fromParts, fromPlain);
  assert.deepEqual(fromCompressed, fromPlain);
});

test('SenML (issue 12 item 5): RFC 8428 5.1.3 (2010) accepted by default with its units as summary tags; one floor, limits.minEventTime; a refused pack is one bad frame', async () => {
  const rfc = JSON.stringify([
    { bn: 'urn:dev:ow:10e2073a011000:', bt: 1.276020076e9, bu: 'A', bver: 5, n: 'voltage', u: 'V', v: 120.1 },
    { n: 'current', t: -5, v: 1.2 },
    { n: 'current', t: -4, v: 1.3 },
    { n: 'current', t: -3, v: 1.4 },
    { n: 'current', t: -2, v: 1.5 },
    { n: 'current', t: -1, v: 1.6 },
    { n: 'current', v: 1.7 },
  ]);
  const senmlSources = {
    sources: [{ type: 'mqtt', name: 'mq', url: 'mqtt://127.0.0.1:1', topics: ['x/#'], format: 'senml' }],
  };
  const bad = async (a: Agent, reason: string) =>
    metricValue(await a.metrics.registry.metrics(), 'edgeflow_agent_bad_frames_total', { reason });
  const dropped = async (a: Agent, reason: string) =>
    metricValue(await a.metrics.registry.metrics(), 'edgeflow_agent_readings_dropped_total', { reason });

  const clock = new FakeClock(Date.UTC(2026, 11, 1)); // synced
  const { agent, outbox, mqtt } = await build(clock, config(senmlSources));
  mqtt.send(rfc, clock.now());
  assert.equal(st(agent).counters.readingsIn, 7);
  mqtt.send('[{"bn":"s1:","bver":11,"n":"t","v":1}]', clock.now());
  assert.equal(await bad(agent, 'unsupported'), 1);
  clock.advance(2000);
  const tagged = await waitFor('summaries of the 2010 pack', () => {
    const s = outbox
      .peek('summaries', 100)
      .map((i) => i.body as { metric: string; tags: Record<string, string> });
    return s.length > 0 ? s : undefined;
  });
  for (const s of tagged) assert.deepEqual(s.tags, { unit: s.metric === 'voltage' ? 'V' : 'A' });
  await agent.stop();

  // The floor raised past 2010: the same pack is refused, counted once as a frame, 7 readings dropped.
  const c2 = new FakeClock(Date.UTC(2026, 11, 1));
  const strict = await build(c2, config({ ...senmlSources, limits: { minEventTime: '2016-01-01' } }));
  strict.mqtt.send(rfc, c2.now());
  assert.equal(st(strict.agent).counters.readingsIn, 0);
  assert.equal(await bad(strict.agent, 'timestamp_too_old'), 1);
  assert.equal(await dropped(strict.agent, 'timestamp_too_old'), 7);
  assert.equal(st(strict.agent).counters.badFrames, 1);
  await strict.agent.stop();
});

test('issue 19: an emitted summary or alert is checkpointed (and its frames acked) at once, not on the 1 s timer; summaries in a 25 ms group window at most once per minInterval, alerts without waiting; minInterval = interval restores the timer', async () => {
  const run = async (minInterval: string) => {
    const clock = new FakeClock(Date.UTC(2026, 10, 22));
    const outbox = new MemoryOutbox();
    const appends: number[] = []; // monotonic time of each append holding items
    const append = outbox.append.bind(outbox);
    outbox.append = (items, cp) => {
      if (items.length > 0) appends.push(clock.monotonic());
      return append(items, cp);
    };
    const cfg = config({ checkpoint: { interval: '1s', minInterval } });
    const { agent, mqtt } = await build(clock, cfg, outbox);
    const t0 = Math.ceil(clock.now() / 1000) * 1000 + 1000;
    clock.advance(t0 - clock.now() + 10); // 10 ms into a window
    const send = (device: string, metric: string, value: number) =>
      mqtt.send({ device, metric, value, ts: clock.now() }, clock.now());
    send('d1', 'u', 1);
    send('d2', 'u', 1);
    clock.advance(300);
    const ackedBefore = mqtt.acked;
    clock.advance(800); // t0 + 1110 ms: the watermark (maxOutOfOrder 100 ms) passes the window end
    send('d1', 'u', 2); // d1's window [t0, t0+1s) closes: a summary
    send('d2', 'u', 2); // and d2's, in the same turn: one group commit
    const emittedAt = clock.monotonic();
    clock.advance(60);
    send('d1', 't', 500); // an alert (threshold value > 100), 60 ms later
    const alertAt = clock.monotonic();
    clock.advance(1500);
    send('d3', 't', 700); // another alert, long after the last checkpoint
    const resolvedAt = clock.monotonic();
    clock.advance(0);
    const first = appends.find((a) => a >= emittedAt);
    const second = appends.find((a) => a >= alertAt);
    const third = appends.find((a) => a >= resolvedAt);
    const hist = await agent.metrics.registry.getSingleMetricAsString(
      'edgeflow_agent_delivery_stage_seconds',
    );
    await agent.stop(0);
    return { emittedAt, first, alertAt, second, resolvedAt, third, acked: mqtt.acked - ackedBefore, hist };
  };

  const now = await run('100ms');
  assert.equal(now.first, now.emittedAt + 25, 'the summaries were committed 25 ms (the group window) later');
  assert.ok(now.acked >= 2, 'and the frames that closed the windows were acknowledged with them');
  assert.equal(now.second, now.alertAt, 'the alert 60 ms later: 25 ms spacing, not minInterval');
  assert.equal(now.third, now.resolvedAt, 'an alert after a quiet spell skips the group window');
  // Per item, emitted → committed: the two summaries in 25 ms, the alert in 0 ms (then idle windows).
  const bucket = (le: string) =>
    Number(new RegExp(`_bucket\\{le="${le}",stage="checkpoint"\\} (\\d+)`).exec(now.hist)?.[1]);
  assert.ok(bucket('0.005') >= 2 && bucket('0.025') >= 3, now.hist);

  const timerOnly = await run('1s');
  assert.ok(
    timerOnly.first !== undefined &&
      timerOnly.first > timerOnly.emittedAt &&
      timerOnly.first - timerOnly.emittedAt <= 1000,
    `minInterval 1s: the summaries waited for the timer checkpoint (${timerOnly.first! - timerOnly.emittedAt} ms)`,
  );
});
