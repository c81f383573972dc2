import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alertPoint, statusPoint, summaryPoint, toLineProtocol } from './influx.ts';
import { summarySchema } from './model.ts';

const summary = summarySchema.parse({
  id: '93f5d5845bbd31bb85c39787830156a1',
  rev: 1,
  device: 'press 7,a=b',
  metric: 'temperature',
  window: { name: 'temp-1m', type: 'tumbling', start: 1700000040000, end: 1700000100000 },
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
});

test('summary point: SPEC section 4 measurement, tags, fields, time = window start (ms)', () => {
  const line = toLineProtocol([summaryPoint('gw-001', summary)]);
  assert.match(
    line,
    /^edgeflow_summary,agent=gw-001,device=press\\ 7\\,a\\=b,metric=temperature,window=temp-1m /,
  );
  assert.match(
    line,
    / count=60i,first=20.3,last=22.1,late=0i,max=22.9,mean=21.4,min=20.1,p50=21.4,p95=22.6,rev=1i,stddev=0.6,sum=1284 1700000040000$/,
  );
});

test('alert point escapes string fields', () => {
  const line = toLineProtocol([
    alertPoint('gw', {
      id: 'x'.repeat(32),
      device: 'd',
      metric: 'm',
      rule: 'hot',
      severity: 'critical',
      state: 'firing',
      ts: 5,
      value: 81,
      message: 'say "hi"',
      tags: {},
    }),
  ]);
  assert.equal(
    line,
    'edgeflow_alert,agent=gw,device=d,metric=m,rule=hot,severity=critical message="say \\"hi\\"",state="firing",value=81 5',
  );
});

test('status point carries outbox and clock fields', () => {
  const line = toLineProtocol([
    statusPoint({
      agent: 'gw',
      version: '0.1.0',
      startedAt: 0,
      ts: 10_000,
      clockSynced: false,
      outbox: { items: 3, bytes: 300, oldestTs: 4000 },
      sources: {},
      counters: { readings_in: 7 },
    }),
  ]);
  assert.match(
    line,
    /^edgeflow_agent,agent=gw clock_synced=F,fleet_applied=0i,fleet_failed=0i,fleet_pending=0i,fleet_state="local",fleet_version=0i,outbox_bytes=300i,outbox_items=3i,outbox_oldest_age_ms=6000i,readings_in=7,uptime_s=10i,version="0.1.0" 10000$/,
  );
});

test('status point carries the fleet report (issue 15)', () => {
  const line = toLineProtocol([
    statusPoint({
      agent: 'gw',
      version: '0.1.0',
      startedAt: 0,
      ts: 10_000,
      clockSynced: true,
      outbox: { items: 0, bytes: 0, oldestTs: null },
      sources: {},
      counters: {},
      fleet: {
        version: 4,
        hash: 'sha256:ab',
        rollout: 'r4',
        state: 'rolled_back',
        reason: 'source line-a: cannot open',
        at: 9000,
      },
    }),
  ]);
  assert.match(line, /fleet_failed=1i/);
  assert.match(line, /fleet_state="rolled_back"/);
  assert.match(line, /fleet_version=4i/);
  assert.match(line, /fleet_rollout="r4"/);
  assert.match(line, /fleet_reason="source line-a: cannot open"/);
  assert.match(line, /fleet_applied=0i/);
});
