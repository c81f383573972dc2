// The hostile payloads of issue 12 (collector items 9, 11, 12), built as the tester described them, for
// the tests and bench/hostile-agent.ts. Each is small on the wire and expensive to take at face value.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { batch, status, summary } from './fixtures.ts';
import type { Harness } from './harness.ts';

/** 100k invalid items in one gzipped batch (the tester's was 461 KB on the wire). */
export function invalidItemsBatch(agent: string, n = 100_000): Buffer {
  const item = '{"id":"x","rev":0,"device":"d","metric":"m","count":"many"}';
  const items = new Array<string>(n).fill(item).join(',');
  return gzipSync(`{"v":1,"agent":"${agent}","batch":"hostile-${n}","items":[${items}]}`);
}

/** A 30M-element array, gzipped (58 KB on the wire, 60 MB inflated). */
export function hugeArray(n = 30_000_000): Buffer {
  // Built in chunks: one 60 MB string would itself be the memory spike this test is about.
  const chunk = Buffer.from('0,'.repeat(1_000_000));
  const parts: Buffer[] = [Buffer.from('[')];
  for (let i = 0; i < n / 1_000_000; i++) parts.push(chunk);
  parts.push(Buffer.from('0]'));
  return gzipSync(Buffer.concat(parts), { level: 9 });
}

/** A valid batch whose one item carries a tag value nested `depth` arrays deep. */
export function deeplyNestedBatch(agent: string, depth = 10_000): Buffer {
  const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  return Buffer.from(
    `{"v":1,"agent":"${agent}","batch":"deep-${depth}","items":[{"id":"deep","tags":{"t":${nested}}}]}`,
  );
}

/** A status with `n` counters (the tester's reached InfluxDB as a 40k-field point). */
export function statusWithCounters(agent: string, ts: number, n = 40_000): Buffer {
  const counters: Record<string, number> = {};
  for (let i = 0; i < n; i++) counters[`c${i}`] = i;
  counters[`long_${'x'.repeat(200)}`] = 1;
  return Buffer.from(JSON.stringify({ ...status(agent, ts), counters }));
}

export interface AttackReport {
  /** /healthz round trips measured while the attack ran, ms, sorted. */
  healthzMs: number[];
  /** Batches the legitimate agent had acknowledged while the attack ran. */
  legitAcked: number;
  hostilePublishes: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  durationMs: number;
  /** Event-loop delay while the attack ran (perf_hooks.monitorEventLoopDelay). */
  loopDelayMs: { p99: number; max: number };
}

export const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/**
 * A hostile agent publishes every payload above `rounds` times (QoS 1, waiting for each PUBACK) while a
 * legitimate agent publishes small batches and an HTTP client polls /healthz in a loop.
 */
export async function hostileAttack(
  h: Harness,
  opts: {
    hostile: string;
    legit: string;
    rounds: number /** baseline: no attack, run this long */;
    idleMs?: number;
  },
): Promise<AttackReport> {
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const rss = () => process.memoryUsage().rss / 2 ** 20;
  const rssBeforeMb = rss();
  let rssPeakMb = rssBeforeMb;
  const payloads = [invalidItemsBatch(opts.hostile), hugeArray(), deeplyNestedBatch(opts.hostile)];
  const statusPayload = statusWithCounters(opts.hostile, 1_700_000_000_000);
  const hostile = await h.connect(opts.hostile);
  const legit = await h.connect(opts.legit);
  let done = false;
  let legitAcked = 0;
  const healthzMs: number[] = [];
  const poll = (async () => {
    while (!done) {
      const t0 = performance.now();
      const res = await fetch(`${h.http}/healthz`);
      await res.arrayBuffer();
      healthzMs.push(performance.now() - t0);
      rssPeakMb = Math.max(rssPeakMb, rss());
    }
  })();
  const legitLoop = (async () => {
    for (let i = 0; !done; i++) {
      await legit.publishAsync(
        `edgeflow/v1/${opts.legit}/summaries`,
        batch(opts.legit, [summary(opts.legit, 'legit', i * 60_000)]),
        { qos: 1 },
      );
      legitAcked++;
    }
  })();
  const t0 = performance.now();
  let hostilePublishes = 0;
  loopDelay.enable();
  try {
    if (opts.idleMs !== undefined) await delay(opts.idleMs);
    for (let r = 0; r < opts.rounds; r++) {
      for (const p of payloads) {
        await hostile.publishAsync(`edgeflow/v1/${opts.hostile}/summaries`, p, { qos: 1 });
        hostilePublishes++;
      }
      await hostile.publishAsync(`edgeflow/v1/${opts.hostile}/status`, statusPayload, { qos: 1 });
      hostilePublishes++;
    }
  } finally {
    done = true;
    await Promise.all([poll, legitLoop]);
    loopDelay.disable();
  }
  const durationMs = performance.now() - t0;
  await hostile.endAsync();
  await legit.endAsync();
  return {
    healthzMs: healthzMs.sort((a, b) => a - b),
    legitAcked,
    hostilePublishes,
    rssBeforeMb,
    rssPeakMb,
    rssAfterMb: rss(),
    durationMs,
    loopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  };
}
