// The Grafana dashboards in deploy/grafana/dashboards are checked against real data: a short real
// pipeline (edgeflow-sim → the agent's embedded broker → edgeflow-agent process → in-process collector →
// InfluxDB 1.x v1 API) fills a database of its own; then every query of every dashboard (panel targets,
// annotations, template variable queries) runs there with the variables set to values found in the data
// and Grafana's macros expanded. A query that errors or returns nothing fails the test.
// Prometheus-datasource panels (the delivery-latency dashboard, issue 19) run their PromQL on the test
// bed's VictoriaMetrics, fed with two real scrapes of the agent's and the collector's /metrics.
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
  expr?: string;
  rawQuery?: boolean;
  refId?: string;
  datasource?: { uid?: string; type?: string };
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
  datasource?: { uid?: string; type?: string };
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  current?: { value?: string | string[] };
  datasource?: { uid?: string; type?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { name: string; query?: string; datasource?: { uid?: string; type?: string } }[] };
}

const isProm = (ds: { type?: string } | undefined) => ds?.type === 'prometheus';

/** Every PromQL query of a dashboard (Prometheus datasource targets and variables). */
export function promQueries(d: Dashboard): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        if (!isProm(t.datasource ?? p.datasource)) continue;
        assert.ok(t.expr, `${d.uid} panel "${p.title}" target ${t.refId}: empty expr`);
        out.push({ where: `panel "${p.title}" ${t.refId}`, query: t.expr });
      }
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list)
    if (v.type === 'query' && isProm(v.datasource) && v.query)
      out.push({
        where: `variable $${v.name}`,
        query: typeof v.query === 'string' ? v.query : v.query.query,
      });
  return out;
}

/** Every InfluxQL query in a dashboard, with where it came from. */
export function dashboardQueries(d: Dashboard): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        if (isProm(t.datasource ?? p.datasource)) continue;
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
    if (v.type === 'query' && !isProm(v.datasource) && typeof v.query === 'string' && v.query)
      out.push({ where: `variable $${v.name}`, query: v.query });
  return out;
}

/**
 * Runs one PromQL query of a dashboard on VictoriaMetrics at `time` (s): `label_values(m, l)` through the
 * label API, anything else as an instant query. Returns how many series came back with a number.
 */
async function promRows(query: string, time: number): Promise<number> {
  const base = services().victoria.url;
  const lv = /^label_values\((.+),\s*(\w+)\)$/.exec(query.trim());
  const url = lv ? new URL(`/api/v1/label/${lv[2]}/values`, base) : new URL('/api/v1/query', base);
  if (lv) {
    url.searchParams.set('match[]', lv[1]!);
    url.searchParams.set('start', String(time - 600));
  } else {
    url.searchParams.set('query', query);
    url.searchParams.set('time', String(time));
  }
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; error?: string; data: unknown };
  if (!res.ok || body.status !== 'success') throw new Error(`HTTP ${res.status}: ${body.error}`);
  if (lv) return (body.data as string[]).length;
  const result = (body.data as { result: { value: [number, string] }[] }).result;
  return result.filter((r) => Number.isFinite(Number(r.value[1]))).length;
}

/**
 * Imports a Prometheus text scrape into VictoriaMetrics as of `atMs`, with `instance` set (the
 * dashboard's variable), so queries see exactly this test's series.
 */
async function importScrape(text: string, instance: string, atMs: number): Promise<void> {
  const lines = text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => `${l} ${atMs}`);
  const url = new URL('/api/v1/import/prometheus', services().victoria.url);
  url.searchParams.append('extra_label', `instance=${instance}`);
  const res = await fetch(url, {
    method: 'POST',
    body: `${lines.join('\n')}\n`,
    signal: AbortSignal.timeout(10_000),
  });
  assert.ok(res.ok, `victoria import: HTTP ${res.status} ${await res.text()}`);
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
  /** PromQL evaluation time (s): just after the second imported scrape. */
  let promTime = 0;

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
    // Two scrapes of both programs' /metrics, one while data flows and one at the end, so rate() has
    // two samples (the stage histograms of issue 19 grow between them).
    const scrape = async () => `${await agent!.metrics()}\n${await collector!.registry.metrics()}`;
    const stagesSeen = (t: string) =>
      /edgeflow_agent_delivery_stage_seconds_count\{stage="checkpoint"\} [1-9]/.test(t) &&
      /edgeflow_collector_delivery_stage_seconds_count\{stage="spool_commit"\} [1-9]/.test(t);
    const firstScrape = waitFor(
      'delivery stage histograms filled',
      async () => {
        const t = await scrape();
        return stagesSeen(t) ? t : null;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
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

    const scrape1 = await firstScrape;
    const scrape2 = await waitFor(
      'stage histograms grew',
      async () => {
        const t = await scrape();
        return t !== scrape1 ? t : null;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const now = Date.now();
    vars.instance = `${agentId}-scrape`;
    await importScrape(scrape1, vars.instance, now - 120_000);
    await importScrape(scrape2, vars.instance, now - 60_000);
    await fetch(new URL('/internal/force_flush', services().victoria.url));
    promTime = Math.round((now - 50_000) / 1000);

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
      const prom = promQueries(d);
      assert.ok(queries.length + prom.length >= 5, `${file}: only ${queries.length + prom.length} queries`);
      const problems: string[] = [];
      for (const { where, query } of prom) {
        // Grafana's $__rate_interval is at least 4 scrape intervals; 5m spans both imported scrapes.
        const q = interpolate(query.replace(/\$__rate_interval\b/g, '5m'), local);
        try {
          if ((await promRows(q, promTime)) === 0) problems.push(`${where}: no data for ${q}`);
        } catch (e) {
          problems.push(`${where}: ${(e as Error).message} (${q})`);
        }
      }
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

  test('dashboards use the provisioned datasource uids, with the matching type', () => {
    const ds = parse(
      readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/edgeflow.yaml'), 'utf8'),
    ) as { datasources: { uid: string; type: string; jsonData: { version?: string } }[] };
    const influx = ds.datasources.find((x) => x.type === 'influxdb')!;
    assert.equal(influx.jsonData.version, 'InfluxQL');
    const types = new Map(ds.datasources.map((x) => [x.uid, x.type]));
    for (const { file, d } of loadDashboards()) {
      const refs = [
        ...d.panels.flatMap((p) => [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)]),
        ...d.templating.list.map((v) => v.datasource),
        ...d.annotations.list.filter((a) => a.query).map((a) => a.datasource),
      ].filter((r) => r !== undefined);
      assert.ok(refs.length > 0);
      for (const r of refs) {
        assert.ok(r.uid && types.has(r.uid), `${file}: datasource ${r.uid} is not provisioned`);
        if (r.type !== undefined)
          assert.equal(r.type, types.get(r.uid!), `${file}: datasource ${r.uid} type`);
      }
    }
  });
});
