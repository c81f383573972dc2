import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { summaryPoint } from '../../shared/influx.ts';
import type { Summary } from '../../shared/model.ts';
import { summary } from '../test-support/fixtures.ts';
import { summaryLine } from './influx-line.ts';

const base = summary('gw-1', 'press-7', 1_700_000_000_000, 2) as Summary;

const same = (agent: string, s: Summary) =>
  assert.equal(summaryLine(agent, s), summaryPoint(agent, s).toLineProtocol());

test('summaryLine: the bytes of summaryPoint().toLineProtocol() for a typical summary', () => {
  same('gw-1', base);
  same('gw-1', { ...base, anomaly_max: 0.25, min: null, max: undefined, late: 3 });
  same('gw-1', { ...base, device: 'a b,c=d\te', metric: 'x\ny\r', window: { ...base.window, name: '' } });
  same('gw-1', { ...base, mean: 1e21, sum: -0, stddev: 5e-324, first: -1.5e-7 });
});

test('summaryLine: equal to the client on random summaries (tags with escapes, missing and odd numbers)', () => {
  const text = fc.string({
    unit: fc.constantFrom('a', 'Z', '9', ',', ' ', '=', '\n', '\r', '\t', '"', '\\', 'é', '_'),
  });
  const num = fc.option(fc.oneof(fc.double(), fc.integer()), { nil: undefined });
  fc.assert(
    fc.property(
      text,
      text,
      text,
      text,
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.integer({ min: -(2 ** 45), max: 2 ** 45 }),
      fc.record({
        min: num,
        max: num,
        mean: num,
        sum: num,
        stddev: num,
        first: num,
        last: num,
        p50: num,
        p95: num,
      }),
      fc.option(fc.double({ min: 0, max: 1 }), { nil: undefined }),
      (agent, device, metric, windowName, count, start, aggs, anomaly) => {
        const s: Summary = {
          ...base,
          device,
          metric,
          count,
          window: { ...base.window, name: windowName, start },
        };
        for (const [k, v] of Object.entries(aggs)) if (v !== undefined) (s as Record<string, unknown>)[k] = v;
        if (anomaly !== undefined) s.anomaly_max = anomaly;
        same(agent, s);
      },
    ),
    { numRuns: 2000 },
  );
});
