// The hostile payloads of issue 12 (collector items 9, 11, 12), built as the tester described them, for
// the tests and bench/hostile-agent.ts. Each is small on the wire and expensive to take at face value.
import { gzipSync } from 'node:zlib';
import { status } from './fixtures.ts';

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
