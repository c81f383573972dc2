// InfluxDB sink against a scripted local HTTP server (port 0): request shape for v1 and v2, bisection of
// a 400 down to the bad points, Retry-After, auth failures kept (not dead-lettered).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { nullLogger } from '../../shared/log.ts';
import type { InfluxConfig } from '../config.ts';
import type { SpoolItem } from '../spool/spool.ts';
import { alert, status, summary } from '../test-support/fixtures.ts';
import { InfluxSink, itemLine, parseRetryAfter } from './influxdb.ts';

interface Req {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
let server: Server;
let base: string;
const requests: Req[] = [];
let respond: (r: Req) => { status: number; body?: string; headers?: Record<string, string> } = () => ({
  status: 204,
});

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const r: Req = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      requests.push(r);
      const out = respond(r);
      res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers }).end(out.body ?? '');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  server.closeAllConnections();
});

let seq = 0;
function item(kind: SpoolItem['kind'], obj: unknown, device: string | null = 'd1'): SpoolItem {
  return {
    seq: ++seq,
    kind,
    agent: 'gw-1',
    itemId: `id${seq}`,
    rev: 0,
    device,
    body: Buffer.from(JSON.stringify(obj)),
    error: null,
    topic: null,
    receivedAt: 0,
  };
}

const v1 = (): InfluxConfig => ({
  url: base,
  api: 'v1',
  db: 'edgeflow',
  rp: 'autogen',
  username: 'edgeflow',
  password: 'pw',
  batchSize: 5000,
  timeout: 2000,
});

test('itemLine: summaries, alerts, status map to SPEC 4 measurements; dead letters and late events are skipped', () => {
  assert.match(
    itemLine(item('summaries', summary('gw-1', 'd1', 60_000)))!,
    /^edgeflow_summary,agent=gw-1,device=d1,metric=temperature,window=temp-1m .*count=60i.* 60000$/,
  );
  assert.match(
    itemLine(item('alerts', alert('gw-1', 'd1', 5)))!,
    /^edgeflow_alert,agent=gw-1,device=d1,metric=temperature,rule=overheat,severity=critical .*state="firing".* 5$/,
  );
  assert.match(
    itemLine(item('status', status('gw-1', 7000), null))!,
    /^edgeflow_agent,agent=gw-1 .*outbox_items=3i.* 7000$/,
  );
  assert.equal(itemLine(item('deadletter', {})), null);
});

test('v1: POST /write?db&rp&precision=ms with basic auth, one line per item', async () => {
  requests.length = 0;
  respond = () => ({ status: 204 });
  const sink = new InfluxSink(v1(), nullLogger());
  const items = [
    item('summaries', summary('gw-1', 'd1', 0)),
    item('deadletter', {}),
    item('alerts', alert('gw-1', 'd1', 5)),
  ];
  assert.deepEqual(await sink.write(items), { ok: 3, failed: [] });
  assert.equal(requests.length, 1);
  const r = requests[0]!;
  assert.equal(r.method, 'POST');
  const u = new URL(r.url, base);
  assert.equal(u.pathname, '/write');
  assert.deepEqual(Object.fromEntries(u.searchParams), { db: 'edgeflow', rp: 'autogen', precision: 'ms' });
  assert.equal(r.headers.authorization, `Basic ${Buffer.from('edgeflow:pw').toString('base64')}`);
  assert.equal(r.body.split('\n').length, 2);
});

test('a 400 is bisected: bad points come back permanent, the rest is written', async () => {
  requests.length = 0;
  const written = new Set<string>();
  respond = (r) => {
    const lines = r.body.split('\n');
    const bad = lines.filter((l) => l.includes('device=bad'));
    // InfluxDB 1.x "partial write": good points are stored, the response is a 400.
    for (const l of lines) if (!l.includes('device=bad')) written.add(l);
    return bad.length
      ? { status: 400, body: '{"error":"partial write: field type conflict dropped=1"}' }
      : { status: 204 };
  };
  const sink = new InfluxSink(v1(), nullLogger());
  const items = Array.from({ length: 16 }, (_, i) =>
    item('summaries', summary('gw-1', i === 3 || i === 11 ? 'bad' : `d${i}`, i * 60_000)),
  );
  const res = await sink.write(items);
  assert.deepEqual(
    res.failed.map((f) => [f.index, f.code, f.retriable]),
    [
      [3, 'bad_point', false],
      [11, 'bad_point', false],
    ],
  );
  assert.equal(res.ok, 14);
  assert.equal(written.size, 14);
  assert.ok(requests.length <= 1 + 2 * 2 * Math.log2(16), `${requests.length} requests`);
});

test('503 with Retry-After: retriable, carries the delay; 401 is retriable (operator must fix), not dead-lettered', async () => {
  respond = () => ({ status: 503, body: 'overloaded', headers: { 'retry-after': '2' } });
  const sink = new InfluxSink(v1(), nullLogger());
  const res = await sink.write([item('summaries', summary('gw-1', 'd1', 0))]);
  assert.deepEqual(
    res.failed.map((f) => [f.code, f.retriable, f.retryAfterMs]),
    [['http_503', true, 2000]],
  );
  respond = () => ({ status: 401, body: '{"error":"authorization failed"}' });
  const res2 = await sink.write([item('summaries', summary('gw-1', 'd1', 0))]);
  assert.deepEqual(
    res2.failed.map((f) => [f.code, f.retriable]),
    [['auth', true]],
  );
});

test('server unreachable: all retriable', async () => {
  const sink = new InfluxSink({ ...v1(), url: 'http://127.0.0.1:1' }, nullLogger());
  const res = await sink.write([
    item('summaries', summary('gw-1', 'd1', 0)),
    item('alerts', alert('gw-1', 'd1', 1)),
  ]);
  assert.equal(res.ok, 0);
  assert.deepEqual(
    res.failed.map((f) => [f.code, f.retriable]),
    [
      ['unavailable', true],
      ['unavailable', true],
    ],
  );
  assert.equal(await sink.healthcheck(), false);
});

test('v2 through the client WriteApi: /api/v2/write with org, bucket, ms precision and the token', async () => {
  requests.length = 0;
  respond = () => ({ status: 204 });
  const sink = new InfluxSink(
    { url: base, api: 'v2', org: 'plant', bucket: 'edgeflow', token: 'tok', batchSize: 5000, timeout: 2000 },
    nullLogger(),
  );
  assert.deepEqual(await sink.write([item('summaries', summary('gw-1', 'd1', 0))]), { ok: 1, failed: [] });
  const u = new URL(requests[0]!.url, base);
  assert.equal(u.pathname, '/api/v2/write');
  assert.equal(u.searchParams.get('org'), 'plant');
  assert.equal(u.searchParams.get('bucket'), 'edgeflow');
  assert.equal(u.searchParams.get('precision'), 'ms');
  assert.equal(requests[0]!.headers.authorization, 'Token tok');
  // A 429 from v2 is retriable with Retry-After; a 400 is bisected like v1.
  respond = () => ({ status: 429, body: '{"code":"too many requests"}', headers: { 'retry-after': '3' } });
  const r429 = await sink.write([item('summaries', summary('gw-1', 'd1', 0))]);
  assert.deepEqual(
    r429.failed.map((f) => [f.retriable, f.retryAfterMs]),
    [[true, 3000]],
  );
  respond = (r) =>
    r.body.includes('device=bad')
      ? { status: 400, body: '{"code":"invalid","message":"bad"}' }
      : { status: 204 };
  const r400 = await sink.write([
    item('summaries', summary('gw-1', 'ok', 0)),
    item('summaries', summary('gw-1', 'bad', 0)),
  ]);
  assert.deepEqual(
    r400.failed.map((f) => [f.index, f.retriable]),
    [[1, false]],
  );
  await sink.close();
});

test('parseRetryAfter: seconds or HTTP date', () => {
  assert.equal(parseRetryAfter('5'), 5000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});

test('itemLine from the ingested value (spool cache) equals itemLine from the stored body', async () => {
  const { ingestPublish } = await import('../ingest/ingest.ts');
  const { batch } = await import('../test-support/fixtures.ts');
  const cases: [kind: 'summaries' | 'alerts' | 'status', payload: Buffer][] = [
    [
      'summaries',
      batch('gw-1', [
        summary('gw-1', 'd1', 60_000),
        summary('gw-1', 'd2', 120_000, 3, { mean: -0, min: null, p95: 1e-7, stddev: 1.5e300 }),
        summary('gw-1', 'd3', 180_000, 0, { max: undefined, late: 2 }),
      ]),
    ],
    [
      'alerts',
      batch('gw-1', [
        { ...alert('gw-1', 'd1', 5), message: 'quote " comma, eq= space\nnewline \\ lone \ud800 é' },
        { ...alert('gw-1', 'd2', 6), value: null },
      ]),
    ],
    ['status', Buffer.from(JSON.stringify(status('gw-1', 7000)))],
  ];
  let n = 0;
  for (const [kind, payload] of cases) {
    const res = await ingestPublish('gw-1', kind, `edgeflow/gw-1/${kind}`, payload, {
      maxInflatedBytes: 1 << 20,
      maxItems: 10_000,
    });
    assert.equal(res.deadLetters.length, 0, JSON.stringify(res.deadLetters));
    for (const e of res.entries) {
      assert.notEqual(e.value, undefined);
      const base: SpoolItem = {
        seq: 1,
        kind: e.kind,
        agent: e.agent,
        itemId: e.itemId,
        rev: e.rev,
        device: e.device,
        body: e.body,
        error: null,
        topic: null,
        receivedAt: 0,
      };
      const fromBody = itemLine(base);
      assert.ok(fromBody);
      assert.equal(itemLine({ ...base, value: e.value }), fromBody);
      n++;
    }
  }
  assert.equal(n, 6);
});
