// Test data for collector unit tests: valid items and batches per SPEC.md section 3.
import { gzipSync } from 'node:zlib';
import { summaryId } from '../../shared/ids.ts';

export function summary(
  agent: string,
  device: string,
  start: number,
  rev = 0,
  extra: Record<string, unknown> = {},
) {
  return {
    id: summaryId(agent, 'temp-1m', device, 'temperature', start),
    rev,
    device,
    metric: 'temperature',
    window: { name: 'temp-1m', type: 'tumbling', start, end: start + 60_000 },
    count: 60,
    min: 20.1,
    max: 22.9,
    mean: 21.4,
    sum: 1284,
    stddev: 0.6,
    first: 20.3,
    last: 22.1,
    p50: 21.4,
    p95: 22.6,
    late: 0,
    tags: {},
    ...extra,
  };
}

export function alert(agent: string, device: string, ts: number) {
  return {
    id: `alert-${agent}-${device}-${ts}`,
    device,
    metric: 'temperature',
    rule: 'overheat',
    severity: 'critical',
    state: 'firing',
    ts,
    value: 85.5,
    message: 'value > 80',
    tags: {},
  };
}

export function status(agent: string, ts: number) {
  return {
    agent,
    version: '0.1.0',
    startedAt: ts - 60_000,
    ts,
    clockSynced: true,
    outbox: { items: 3, bytes: 1200, oldestTs: ts - 5000 },
    sources: {},
    counters: { readingsIn: 100 },
  };
}

export function batch(
  agent: string,
  items: unknown[],
  id = `b-${Math.random().toString(36).slice(2)}`,
): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, agent, batch: id, items }));
}

export function gz(b: Buffer): Buffer {
  return gzipSync(b);
}
