import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../test/helpers/wait.ts';
import { batch, summary } from './test-support/fixtures.ts';
import { MemorySink, startHarness } from './test-support/harness.ts';

test('/metrics, /healthz and /status reflect traffic, spool depth per sink and a sink being down', async () => {
  const kafka = new MemorySink('kafka');
  const influx = new MemorySink('influx');
  influx.mode = 'down';
  const h = await startHarness({ sinks: [kafka, influx] });
  try {
    assert.equal((await fetch(`${h.http}/healthz`)).status, 200);
    const c = await h.connect('gw-1');
    await c.publishAsync(
      'edgeflow/v1/gw-1/summaries',
      batch('gw-1', [summary('gw-1', 'a', 0), summary('gw-1', 'b', 0)]),
      { qos: 1 },
    );
    await waitFor('kafka wrote', () => kafka.written.length === 2);
    const text = await waitFor('influx error counted', async () => {
      const t = await (await fetch(`${h.http}/metrics`)).text();
      return /edgeflow_collector_sink_errors_total\{sink="influx",code="unavailable"\} [1-9]/.test(t)
        ? t
        : null;
    });
    assert.match(text, /edgeflow_collector_connected_agents 1/);
    assert.match(text, /edgeflow_collector_items_total\{kind="summaries"\} 2/);
    assert.match(text, /edgeflow_collector_spool_depth_items\{sink="influx"\} 2/);
    assert.match(text, /edgeflow_collector_spool_depth_items\{sink="kafka"\} 0/);
    assert.match(text, /edgeflow_collector_sink_up\{sink="influx"\} 0/);
    assert.match(text, /edgeflow_collector_sink_write_seconds_count\{sink="kafka"\} [1-9]/);
    const st = (await (await fetch(`${h.http}/status`)).json()) as {
      connectedClients: number;
      sinks: { name: string; depth: number; lastError: string | null }[];
    };
    assert.equal(st.connectedClients, 1);
    assert.deepEqual(
      st.sinks.map((s) => [s.name, s.depth]),
      [
        ['kafka', 0],
        ['influx', 2],
      ],
    );
    assert.match(st.sinks[1]!.lastError ?? '', /unavailable/);
    assert.equal((await fetch(`${h.http}/nope`)).status, 404);
  } finally {
    await h.stop();
  }
});
