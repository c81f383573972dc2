// docs/design/plugins.md, walked once (issue 13): a new frame format is one file
// (fixtures/ssv-decoder.ts) and one registry line (`decoders.add(ssvFormat)` below, which in the
// product is a line in agent/decoders/registry.ts). Nothing else is touched, and then: the config
// accepts `format: ssv` and check-config's message lists it, the docs tables list it, and frames in
// that format go through the real runtime into windows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentConfigSchema } from '../../agent/config.ts';
import { createDecoder, decoders } from '../../agent/decoders/registry.ts';
import { MemoryOutbox } from '../../agent/outbox/memory.ts';
import { Agent } from '../../agent/runtime/agent.ts';
import type { RawFrame, Source, SourceStatus } from '../../agent/sources/source.ts';
import { renderGenerated } from '../../scripts/docs-config.ts';
import { FakeClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { describeIssues } from '../../shared/model.ts';
import { waitFor } from '../helpers/wait.ts';
import { ssvFormat } from './fixtures/ssv-decoder.ts';

decoders.add(ssvFormat); // the registry line

const base = {
  agent: { id: 'walk', dataDir: '/nonexistent-not-used' },
  watermark: { maxOutOfOrder: '100ms', idleTimeout: '1h' },
  windows: [{ name: 'w1s', type: 'tumbling', size: '1s', aggregates: ['count', 'sum'] }],
};

test('the config takes the new format on every source, and names it when a format is wrong', () => {
  const cfg = agentConfigSchema().parse({
    ...base,
    sources: [
      { type: 'serial', name: 'line', path: '/dev/ttyUSB0', format: 'ssv' },
      { type: 'mqtt', name: 'mq', url: 'mqtt://127.0.0.1:1883', topics: ['x/#'], format: 'ssv' },
    ],
  });
  assert.deepEqual(
    cfg.sources.map((s) => s.format),
    ['ssv', 'ssv'],
  );
  const bad = agentConfigSchema().safeParse({
    ...base,
    sources: [{ type: 'serial', name: 'line', path: '/dev/ttyUSB0', format: 'svs' }],
  });
  assert.equal(bad.success, false);
  assert.deepEqual(describeIssues(bad.error!, ''), [
    'sources.0.format: Invalid option: expected one of "json"|"csv"|"kv"|"senml"|"ssv"',
  ]);
});

test('the docs tables list it (npm run docs:config)', () => {
  assert.match(renderGenerated(), /\| `ssv` \| `device;metric;value`/);
});

test('frames in the new format go through the runtime into a window summary', async () => {
  assert.deepEqual(createDecoder('ssv').decode('d1;t;2', { arrivalTs: 5 }), [
    { device: 'd1', metric: 't', value: 2, ts: 5 },
  ]);
  const t0 = Date.UTC(2026, 0, 1);
  const clock = new FakeClock(t0);
  const outbox = new MemoryOutbox();
  let onFrame: ((f: RawFrame) => void) | null = null;
  const source: Source = {
    name: 'line',
    type: 'serial',
    async start(fn) {
      onFrame = fn;
    },
    pause() {},
    resume() {},
    async stop() {},
    status: (): SourceStatus => ({ name: 'line', type: 'serial', state: 'up', framesIn: 0, reconnects: 0 }),
  };
  const cfg = agentConfigSchema().parse({
    ...base,
    sources: [{ type: 'serial', name: 'line', path: '/dev/null', format: 'ssv' }],
  });
  const agent = new Agent(cfg, {
    log: nullLogger(),
    version: 'test',
    clock,
    outbox,
    sourceFactory: () => source,
  });
  await agent.start();
  try {
    const send = (payload: string) => onFrame!({ payload: Buffer.from(payload), receivedAt: clock.now() });
    for (const v of [1, 2, 3]) {
      send(`d1;t;${v}`);
      clock.advance(100);
    }
    send('not a frame');
    clock.advance(2_000);
    send('d1;t;100'); // moves the watermark past the first second: its window closes
    clock.advance(2_000);
    const sums = await waitFor('the first window in the outbox', () => {
      const list = outbox.peek('summaries', 100).map((s) => s.body as { count: number; sum: number });
      return list.length > 0 && list;
    });
    assert.deepEqual(
      sums.map((s) => [s.count, s.sum]),
      [[3, 6]],
    );
    const counters = (agent.status() as { counters: Record<string, number> }).counters;
    assert.equal(counters.readingsIn, 4);
  } finally {
    await agent.stop();
  }
});
