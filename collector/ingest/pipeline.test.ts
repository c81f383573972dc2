import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { nullLogger } from '../../shared/log.ts';
import { createCollectorMetrics } from '../metrics.ts';
import { Spool } from '../spool/spool.ts';
import { batch, summary } from '../test-support/fixtures.ts';
import { IngestPipeline } from './pipeline.ts';

function setup() {
  const spool = new Spool(':memory:', {
    maxBytes: 1 << 30,
    sinks: ['kafka'],
    dedupRetentionMs: 1e9,
    dedupMaxRows: 1e6,
  });
  const groups: number[] = [];
  const orig = spool.appendGroup.bind(spool);
  spool.appendGroup = (g) => {
    groups.push(g.length);
    return orig(g);
  };
  const metrics = createCollectorMetrics(new Registry());
  return {
    spool,
    groups,
    metrics,
    p: new IngestPipeline(spool, metrics, nullLogger(), { maxInflatedBytes: 1 << 20, maxItems: 10_000 }),
  };
}

test('publishes arriving together are committed in one transaction, each gets its own result', async () => {
  const { p, groups, spool } = setup();
  const t = 'edgeflow/v1/gw-1/summaries';
  const [a, b, c] = await Promise.all([
    p.accept('gw-1', 'summaries', t, batch('gw-1', [summary('gw-1', 'a', 0)])),
    p.accept('gw-1', 'summaries', t, batch('gw-1', [summary('gw-1', 'a', 0), summary('gw-1', 'b', 0)])),
    p.accept('gw-2', 'summaries', 'edgeflow/v1/gw-2/summaries', Buffer.from('junk')),
  ]);
  assert.deepEqual(groups, [3], 'one appendGroup call for the three publishes');
  assert.deepEqual(a, { stored: 1, duplicates: 0, deadLetters: 0 });
  assert.deepEqual(b, { stored: 1, duplicates: 1, deadLetters: 0 }, 'dedup also works inside one group');
  assert.deepEqual(c, { stored: 1, duplicates: 0, deadLetters: 1 });
  assert.equal(spool.read('kafka', 10).length, 3);
  await p.accept('gw-1', 'summaries', t, batch('gw-1', [summary('gw-1', 'c', 0)]));
  assert.deepEqual(groups, [3, 1]);
});

test('a failed group commit rejects every publish in it (none is acknowledged)', async () => {
  const { p, spool } = setup();
  spool.close();
  const t = 'edgeflow/v1/gw-1/summaries';
  const results = await Promise.allSettled([
    p.accept('gw-1', 'summaries', t, batch('gw-1', [summary('gw-1', 'a', 0)])),
    p.accept('gw-1', 'summaries', t, batch('gw-1', [summary('gw-1', 'b', 0)])),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  assert.equal((results[0] as PromiseRejectedResult).reason.code, 'STORE_WRITE_FAILED');
});
