// Smoke test of the test bed's InfluxDB 1.x (auth enabled): v1 /write with line protocol at ms
// precision and user/password, InfluxQL /query read back, and a wrong password refused with 401.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError, influxQuery, services, uniqueName } from '../helpers/services.ts';

async function v1Write(lines: string, username: string, password: string): Promise<Response> {
  const { url, db } = services().influx1;
  const u = new URL('/write', url);
  u.searchParams.set('db', db);
  u.searchParams.set('precision', 'ms');
  u.searchParams.set('u', username);
  u.searchParams.set('p', password);
  return fetch(u, { method: 'POST', body: lines, signal: AbortSignal.timeout(10_000) });
}

test('v1 /write (line protocol, precision ms, user/password) then InfluxQL /query reads it back', async () => {
  const { username, password } = services().influx1;
  const run = uniqueName('r');
  const t0 = 1_700_000_040_000;
  const lines = [
    `edgeflow_smoke,run=${run},device=s1 mean=21.5,count=60i,state="ok" ${t0}`,
    `edgeflow_smoke,run=${run},device=s1 mean=22.25,count=59i,state="late" ${t0 + 60_000}`,
  ].join('\n');
  const res = await v1Write(lines, username, password);
  assert.equal(res.status, 204, await res.text());

  const out = await influxQuery(
    `SELECT "mean","count","state","device" FROM "edgeflow_smoke" WHERE "run" = '${run}' ORDER BY time`,
  );
  assert.deepEqual(out.results[0]?.series, [
    {
      name: 'edgeflow_smoke',
      columns: ['time', 'mean', 'count', 'state', 'device'],
      values: [
        [t0, 21.5, 60, 'ok', 's1'],
        [t0 + 60_000, 22.25, 59, 'late', 's1'],
      ],
    },
  ]);
});

test('a wrong password is refused with 401 and the server says why', async () => {
  const { username } = services().influx1;
  const res = await v1Write(
    `edgeflow_smoke,run=${uniqueName('r')} v=1 1700000000000`,
    username,
    'wrong-password',
  );
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { error: 'authorization failed' });

  await assert.rejects(influxQuery('SHOW MEASUREMENTS', { password: 'wrong-password' }), (e: unknown) => {
    assert.ok(e instanceof HttpError);
    assert.equal(e.status, 401);
    assert.match(e.body, /authorization failed/);
    return true;
  });
});

test('the test user has no admin rights (auth is really enforced)', async () => {
  await assert.rejects(influxQuery('SHOW USERS'), /requires admin privilege|error authorizing query/);
  const users = await influxQuery('SHOW USERS', { admin: true });
  const names = users.results[0]?.series?.[0]?.values.map((v) => v[0]);
  assert.ok(names?.includes(services().influx1.username), `users: ${JSON.stringify(names)}`);
});
