// Regression (issue 15, "the reload must snapshot state after its awaits"): Agent.reload took the window
// and rule snapshot before awaiting the sources' stop; a frame a source delivered while stopping (an MQTT
// message in flight during the unsubscribe) went into the old engines and was then dropped from the
// windows, while its frame was acknowledged at the next checkpoint: a reading lost after it was counted.
// In-process, with a fake source (the fault is a timing that a real broker produces only by chance).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentConfig } from '../../agent/config.ts';
import { agentSchema } from '../../agent/load-config.ts';
import { MemoryOutbox } from '../../agent/outbox/memory.ts';
import { Agent } from '../../agent/runtime/agent.ts';
import type { RawFrame, Source, SourceStatus } from '../../agent/sources/source.ts';
import { FakeClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';

class StoppingSource implements Source {
  onFrame: ((f: RawFrame) => void) | null = null;
  acked = 0;
  /** Delivered from inside stop(), before it resolves. */
  lastWords: unknown = null;
  constructor(
    readonly name: string,
    readonly type: 'mqtt',
  ) {}
  async start(onFrame: (f: RawFrame) => void): Promise<void> {
    this.onFrame = onFrame;
  }
  send(payload: unknown, receivedAt: number): void {
    this.onFrame!({
      payload: Buffer.from(JSON.stringify(payload)),
      receivedAt,
      ack: () => void this.acked++,
    });
  }
  pause(): void {}
  resume(): void {}
  async stop(): Promise<void> {
    await Promise.resolve();
    if (this.lastWords) this.send(this.lastWords, Date.now());
    await new Promise((r) => setImmediate(r));
  }
  status(): SourceStatus {
    return { name: this.name, type: this.type, state: 'up', framesIn: 0, reconnects: 0 };
  }
}

const config = (topics: string[]): AgentConfig =>
  agentSchema.parse({
    agent: { id: 'reload-snap', dataDir: '/nonexistent-not-used' },
    sources: [{ type: 'mqtt', name: 'mq', url: 'mqtt://127.0.0.1:1', topics, format: 'json' }],
    watermark: { maxOutOfOrder: '0s', idleTimeout: '1h' },
    windows: [{ name: 'w', type: 'tumbling', size: '10s', aggregates: ['count', 'sum'] }],
    checkpoint: { interval: '1s' },
  }) as AgentConfig;

test('reload keeps a reading a source delivered while it was stopping (snapshot after the awaits)', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22));
  const outbox = new MemoryOutbox();
  const sources: StoppingSource[] = [];
  const agent = new Agent(config(['a/#']), {
    log: nullLogger(),
    version: 'test',
    clock,
    outbox,
    sourceFactory: (c) => {
      const s = new StoppingSource(c.name, 'mqtt');
      sources.push(s);
      return s;
    },
  });
  await agent.start();
  const t0 = Math.floor(clock.now() / 10_000) * 10_000 - 60_000;
  const first = sources[0]!;
  for (let i = 1; i <= 5; i++)
    first.send({ device: 'd', metric: 'm', value: i, ts: t0 + i * 100 }, clock.now());
  first.lastWords = { device: 'd', metric: 'm', value: 6, ts: t0 + 600 };
  await agent.reload(config(['a/#', 'b/#'])); // sources changed: stopped and started again
  const second = sources[1]!;
  second.send({ device: 'd', metric: 'm', value: 7, ts: t0 + 700 }, clock.now());
  second.send({ device: 'd', metric: 'm', value: 0, ts: t0 + 30_000 }, clock.now()); // closes the window
  clock.advance(2_000);
  const summary = outbox
    .peek('summaries', 100)
    .map((s) => s.body as { count: number; sum: number; window: { start: number } })
    .find((s) => s.window.start === t0);
  assert.ok(summary, 'the window closed');
  assert.equal(summary.count, 7, 'the reading delivered during the stop is in the window');
  assert.equal(summary.sum, 28);
  assert.equal(first.acked, 6, 'and its frame was acknowledged only with it');
  await agent.stop(0);
});
