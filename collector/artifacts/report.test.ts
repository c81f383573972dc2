// The update state agents report reaches the collector's /metrics and InfluxDB points (issue 16).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusPoint } from '../../shared/influx.ts';
import { statusSchema } from '../../shared/model.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { status } from '../test-support/fixtures.ts';
import { startHarness } from '../test-support/harness.ts';

test('status.update: one series per agent on /metrics, replaced when the state changes', async () => {
  const h = await startHarness({ agents: ['gw-1'] });
  try {
    const c = await h.connect('gw-1');
    const send = async (update: unknown, ts: number) =>
      c.publishAsync('edgeflow/v1/gw-1/status', JSON.stringify({ ...status('gw-1', ts), update }), {
        qos: 1,
      });
    const series = async () =>
      (await (await fetch(`${h.http}/metrics`)).text())
        .split('\n')
        .filter((l) => l.startsWith('edgeflow_collector_agent_update{'));
    await send({ running: '1.0.0', wanted: '1.1.0', state: 'downloading', bytes: 10, at: 1 }, Date.now());
    await waitFor('downloading', async () => (await series()).length === 1);
    assert.deepEqual(await series(), [
      'edgeflow_collector_agent_update{agent="gw-1",running="1.0.0",wanted="1.1.0",state="downloading"} 1',
    ]);
    await send(
      { running: '1.0.0', wanted: '1.1.0', state: 'rolled_back', reason: 'not healthy within 120s', at: 2 },
      Date.now() + 1,
    );
    await waitFor('rolled_back replaces downloading', async () =>
      (await series()).some((l) => l.includes('state="rolled_back"')),
    );
    assert.equal((await series()).length, 1);
  } finally {
    await h.stop();
  }
});

test('status.update in the InfluxDB point of edgeflow_agent', () => {
  const st = statusSchema.parse({
    ...status('gw-1', 1_700_000_000_000),
    update: {
      running: '1.0.0',
      wanted: '1.1.0',
      state: 'refused',
      reason: 'manifest signature invalid',
      at: 1,
    },
  });
  const line = statusPoint(st).toLineProtocol();
  assert.match(line ?? '', /update_state="refused"/);
  assert.match(line ?? '', /update_wanted="1.1.0"/);
  assert.match(line ?? '', /update_reason="manifest signature invalid"/);
  // Statuses without it (older agents) are unchanged.
  assert.doesNotMatch(statusPoint(statusSchema.parse(status('gw-1', 1))).toLineProtocol() ?? '', /update_/);
});
