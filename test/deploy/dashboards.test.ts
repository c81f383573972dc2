// The Grafana dashboards in deploy/grafana/dashboards are checked against real data: a short real
// pipeline (edgeflow-sim → the agent's embedded broker → edgeflow-agent process → in-process collector →
// InfluxDB 1.x v1 API) fills a database of its own; then every query of every dashboard (panel targets,
// annotations, template variable queries) runs there with the variables set to values found in the data
// and Grafana's macros expanded. A query that errors or returns nothing fails the test.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { type Running, runCollector } from '../collector/kit.ts';
import { type AgentProcess, startAgent, tempDir, writeConfig } from '../helpers/agent-process.ts';
import { influxQuery, repoRoot, services, uniqueName } from '../helpers/services.ts';
import { runSim } from '../helpers/sim-run.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = repoRoot();
const DASHBOARDS = join(ROOT, 'deploy/grafana/dashboards');

interface Target {
  query?: string;
  rawQuery?: boolean;
  refId?: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
  datasource?: { uid?: string };
}
interface Variable {
  name: string;
  type: string;
  query?: string;
  current?: { value?: string | string[] };
  datasource?: { uid?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { name: string; query?: string; datasource?: { uid?: string } }[] };
}

/** Every InfluxQL query in a dashboard, with where it came from. */
export function dashboardQueries(d: Dashboard): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        assert.equal(
          t.rawQuery,
          true,
          `${d.uid} panel "${p.title}" target ${t.refId}: expected a raw InfluxQL query`,
        );
        assert.ok(t.query, `${d.uid} panel "${p.title}" target ${t.refId}: empty query`);
        out.push({ where: `panel "${p.title}" ${t.refId}`, query: t.query });
      }
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const a of d.annotations.list)
    if (a.query) out.push({ where: `annotation "${a.name}"`, query: a.query });
  for (const v of d.templating.list)
    if (v.type === 'query' && v.query) out.push({ where: `variable $${v.name}`, query: v.query });
  return out;
}

/** Grafana escapes multi-value variables for InfluxQL regexes; a single value the same way. */
const regexEscape = (s: string) => s.replace(/[\\^$*+?.()|[\]{}/-]/g, '\\$&');

/** Expands Grafana macros and template variables the way Grafana would for the given values. */
export function interpolate(query: string, vars: Record<string, string>): string {
  let q = query
    .replace(/\$timeFilter\b/g, 'time > now() - 1h')
    .replace(/\$__interval_ms\b/g, '10000')
    .replace(/\$__interval\b/g, '10s');
  q = q.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (m, a: string, b: string, c: string) => {
    const name = a ?? b ?? c;
    const v = vars[name];
    return v === undefined ? m : v;
  });
  assert.doesNotMatch(q, /\$\w|\[\[/, `unexpanded variable in ${q}`);
  return q;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const loadDashboards = () =>
  readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ file: f, d: JSON.parse(readFileSync(join(DASHBOARDS, f), 'utf8')) as Dashboard }));

describe('Grafana dashboards against real data in InfluxDB 1.x', { timeout: 240_000 }, () => {
  const db = uniqueName('edgeflow_dash').replace(/[^a-zA-Z0-9_]/g, '_');
  const agentId = `dash-${process.pid}-${Date.now().toString(36)}`;
  let collector: Running | undefined;
  let agent: AgentProcess | undefined;
  const vars: Record<string, string> = {};

  before(async () => {
    const i = services().influx1;
    await influxQuery(`CREATE DATABASE "${db}"`, { admin: true });
    await influxQuery(`GRANT ALL ON "${db}" TO "${i.username}"`, { admin: true });
    collector = await runCollector(
      agentId,
      `influx: { url: ${i.url}, api: v1, db: ${db}, username: ${i.username}, password: ${i.password} }\n`,
    );
    const dir = tempDir('edgeflow-dash-');
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${collector.secret}\n`, { mode: 0o600 });
    const sensorSecretFile = join(dir, 'sensor-secret');
    writeFileSync(sensorSecretFile, 'dock-sensor-secret\n', { mode: 0o600 });
    const brokerPort = await freePort();
    const cfg = writeConfig(dir, {
      agent: { id: agentId, dataDir: join(dir, 'data') },
      sources: [
        {
          type: 'mqtt-broker',
          name: 'dock',
          listen: `127.0.0.1:${brokerPort}`,
          topicPattern: 'sensors/{device}/{metric}',
          format: 'number',
          username: 'dock',
          passwordFile: sensorSecretFile, // the sensors log in (issue 12 item 1)
        },
      ],
      watermark: { maxOutOfOrder: '200ms', idleTimeout: '1s' },
      windows: [{ name: 't2s', match: { device: '*', metric: '*' }, type: 'tumbling', size: '2s' }],
      // "warm" fires on the first temperature reading (they are all positive), so edgeflow_alert has rows.
      rules: [
        {
          name: 'warm',
          match: { metric: 'temperature' },
          kind: 'threshold',
          when: 'value > 0',
          severity: 'info',
        },
        { name: 'vibration-spike', match: { metric: 'vibration' }, kind: 'spike', severity: 'warning' },
        // scores every temperature reading after 5, so summaries carry anomaly_max (the score panel)
        { name: 'temp-z', match: { metric: 'temperature' }, kind: 'zscore', window: 5, severity: 'info' },
      ],
      uplink: {
        urls: [`mqtt://127.0.0.1:${collector.port}`],
        username: agentId,
        passwordFile: secretFile,
        batch: { maxItems: 200, maxDelay: '200ms' },
        statusInterval: '1s',
      },
      http: { listen: '127.0.0.1:0' },
    });
    agent = await startAgent(cfg);
    await waitFor('embedded broker up', async () => (await agent!.status()).sources.dock?.state === 'up', {
      timeoutMs: 30_000,
    });
    const report = await runSim([
      '--mqtt',
      `mqtt://127.0.0.1:${brokerPort}`,
      '--mqtt-username',
      'dock',
      '--mqtt-password-file',
      sensorSecretFile,
      '--topic-pattern',
      'sensors/{device}/{metric}',
      '--format',
      'number',
      '--devices',
      '2',
      '--metrics',
      'temperature,vibration',
      '--rate',
      '10',
      '--duration',
      '6s',
      '--anomalies',
      'spike',
      '--anomaly-rate',
      '600',
      '--seed',
      'dash',
    ]);
    assert.ok(report.readingsSent > 100);
    const has = async (m: string) => {
      const r = await influxQuery(`SELECT count(*) FROM "${m}" WHERE "agent" = '${agentId}'`, {
        db,
        admin: true,
      });
      return (r.results[0]?.series?.length ?? 0) > 0;
    };
    await waitFor(
      'summaries, alerts and status in InfluxDB',
      async () =>
        (await has('edgeflow_summary')) && (await has('edgeflow_alert')) && (await has('edgeflow_agent')),
      { timeoutMs: 60_000, intervalMs: 250 },
    );

    // Variable values as a user would pick them: a real (agent, device, metric, window) series.
    const row = await influxQuery(
      `SELECT * FROM "edgeflow_summary" WHERE "agent" = '${agentId}' AND "metric" = 'temperature' LIMIT 1`,
      { db, admin: true },
    );
    const s = row.results[0]!.series![0]!;
    const col = (n: string) => String(s.values[0]![s.columns.indexOf(n)]);
    Object.assign(vars, {
      agent: regexEscape(col('agent')),
      device: regexEscape(col('device')),
      metric: regexEscape(col('metric')),
      window: regexEscape(col('window')),
    });
  });

  after(async () => {
    await agent?.stop('SIGTERM');
    await collector?.stop();
    await influxQuery(`DROP DATABASE "${db}"`, { admin: true }).catch(() => {});
  });

  for (const { file, d } of loadDashboards()) {
    test(`${file}: every query runs and returns data`, async () => {
      // Custom (non-query) variables take their current value, as on first load.
      const local: Record<string, string> = { ...vars };
      for (const v of d.templating.list) {
        if (v.type === 'custom') local[v.name] = String(v.current?.value);
        else assert.equal(v.type, 'query', `${file}: variable $${v.name} of type ${v.type}`);
      }
      const queries = dashboardQueries(d);
      assert.ok(queries.length >= 5, `${file}: only ${queries.length} queries`);
      const problems: string[] = [];
      for (const { where, query } of queries) {
        const q = interpolate(query, local);
        try {
          const r = await influxQuery(q, { db, admin: true });
          const series = r.results.flatMap((x) => x.series ?? []);
          const rows = series.reduce(
            (n, x) => n + x.values.filter((v) => v.slice(1).some((c) => c !== null) || v.length === 1).length,
            0,
          );
          if (rows === 0) problems.push(`${where}: no data for ${q}`);
        } catch (e) {
          problems.push(`${where}: ${(e as Error).message}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }

  test('dashboard structure: unique uids and panel ids, grid positions, provisioned path', () => {
    const uids = new Set<string>();
    for (const { file, d } of loadDashboards()) {
      assert.ok(!uids.has(d.uid), `${file}: duplicate uid ${d.uid}`);
      uids.add(d.uid);
      const ids = d.panels.map((p) => (p as { id?: number }).id);
      assert.equal(new Set(ids).size, ids.length, `${file}: duplicate panel ids`);
      for (const p of d.panels) {
        const g = (p as { gridPos?: { x: number; y: number; w: number; h: number } }).gridPos;
        assert.ok(g && g.w > 0 && g.h > 0 && g.x + g.w <= 24, `${file}: panel "${p.title}" gridPos`);
      }
    }
    const prov = parse(
      readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/edgeflow.yaml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    const compose = readFileSync(join(ROOT, 'deploy/compose/docker-compose.yml'), 'utf8');
    assert.ok(
      compose.includes(`../grafana/dashboards:${prov.providers[0]!.options.path}:ro`),
      'compose mounts the dashboards where the provider looks',
    );
  });

  test('dashboards use the provisioned datasource uid', () => {
    const ds = parse(
      readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/edgeflow.yaml'), 'utf8'),
    ) as { datasources: { uid: string; jsonData: { version: string } }[] };
    const uid = ds.datasources[0]!.uid;
    assert.equal(ds.datasources[0]!.jsonData.version, 'InfluxQL');
    for (const { file, d } of loadDashboards()) {
      const refs = [
        ...d.panels.flatMap((p) => [
          p.datasource?.uid,
          ...(p.targets ?? []).map((t) => (t as { datasource?: { uid?: string } }).datasource?.uid),
        ]),
        ...d.templating.list.map((v) => v.datasource?.uid),
        ...d.annotations.list.filter((a) => a.query).map((a) => a.datasource?.uid),
      ].filter((u) => u !== undefined);
      assert.ok(refs.length > 0);
      for (const r of refs) assert.equal(r, uid, `${file}: datasource ${r}`);
    }
  });
});
