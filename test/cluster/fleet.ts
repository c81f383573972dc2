// A simulated fleet for the cluster tests and bench (issue 17): N agents in ONE process, each with the
// agent's real outbox (SqliteOutbox, a file per agent) and real uplink (MqttUplink: batches, QoS 1,
// delete on PUBACK, URL fail-over). Twenty agent processes would not fit on a shared 2-core machine;
// what the cluster sees on the wire is the same. Each agent appends `--items` summaries (count = 1..7
// readings, deterministic) and one alert per 20 summaries, at `--rate` summaries/s.
//
//   node --import tsx test/cluster/fleet.ts --config fleet.json
//   fleet.json: { prefix, agents, items, rate, urls: [..], secrets: {agentId: secret}, dir, rotate: true }
//
// stdout: one JSON progress line every 500 ms ({generated, acked, pending, byUrl}), then
// {"done":true, ...} once every item was generated and acknowledged; exit 0.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteOutbox } from '../../agent/outbox/sqlite.ts';
import { MqttUplink } from '../../agent/uplink/mqtt-uplink.ts';
import { alertId, summaryId } from '../../shared/ids.ts';

export interface FleetConfig {
  prefix: string;
  agents: number;
  items: number;
  /** summaries per second per agent */
  rate: number;
  urls: string[];
  secrets: Record<string, string>;
  dir: string;
}

export function fleetAgentId(prefix: string, i: number): string {
  return `${prefix}-a${String(i).padStart(2, '0')}`;
}

/** Readings in summary n of an agent (what the accounting expects). */
export function readingsOf(n: number): number {
  return 1 + (n % 7);
}

export function expectedTotals(cfg: Pick<FleetConfig, 'agents' | 'items'>): {
  summaries: number;
  readings: number;
  alerts: number;
} {
  let readings = 0;
  for (let n = 0; n < cfg.items; n++) readings += readingsOf(n);
  return {
    summaries: cfg.agents * cfg.items,
    readings: cfg.agents * readings,
    alerts: cfg.agents * Math.ceil(cfg.items / 20),
  };
}

const T0 = Date.UTC(2026, 0, 1);

function summary(agent: string, n: number) {
  const device = `dev-${n % 5}`;
  const start = T0 + Math.floor(n / 5) * 10_000;
  const count = readingsOf(n);
  return {
    id: summaryId(agent, 'w10s', device, 'temperature', start),
    rev: 0,
    device,
    metric: 'temperature',
    window: { name: 'w10s', type: 'tumbling' as const, start, end: start + 10_000 },
    count,
    min: 20,
    max: 20 + count,
    mean: 20 + count / 2,
    sum: count * 21,
    stddev: 1,
    first: 20,
    last: 21,
    p50: 21,
    p95: 22,
    late: 0,
    tags: {},
  };
}

function alert(agent: string, n: number) {
  const ts = T0 + n * 2000;
  return {
    id: alertId(agent, 'too-hot', 'dev-0', 'temperature', ts, 'firing'),
    device: 'dev-0',
    metric: 'temperature',
    rule: 'too-hot',
    severity: 'warning' as const,
    state: 'firing' as const,
    ts,
    value: 99,
    message: 'too hot',
    tags: {},
  };
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--config');
  const cfg = JSON.parse(readFileSync(process.argv[i + 1]!, 'utf8')) as FleetConfig;
  const agents = Array.from({ length: cfg.agents }, (_, k) => {
    const id = fleetAgentId(cfg.prefix, k);
    const pw = join(cfg.dir, `${id}.secret`);
    writeFileSync(pw, cfg.secrets[id]!, { mode: 0o600 });
    const outbox = new SqliteOutbox({ path: join(cfg.dir, `${id}.outbox.db`) });
    // Spread over the nodes: agent k starts at node k mod n and fails over round robin.
    const urls = cfg.urls.map((_, j) => cfg.urls[(k + j) % cfg.urls.length]!);
    const uplink = new MqttUplink(
      {
        agentId: id,
        urls,
        username: id,
        passwordFile: pw,
        batch: { maxItems: 50, maxDelay: 200 },
        maxInFlight: 4,
        backoff: { minMs: 200, maxMs: 2000 },
        connectTimeout: 5000,
        keepalive: 10,
      },
      outbox,
    );
    uplink.start();
    return { id, outbox, uplink, generated: 0 };
  });
  const t0 = performance.now();
  let done = false;
  const gen = setInterval(() => {
    const due = Math.min(cfg.items, Math.floor(((performance.now() - t0) / 1000) * cfg.rate));
    for (const a of agents) {
      const items = [];
      for (; a.generated < due; a.generated++) {
        const s = summary(a.id, a.generated);
        items.push({ kind: 'summaries' as const, id: s.id, rev: 0, ts: s.window.start, body: s });
        if (a.generated % 20 === 0) {
          const al = alert(a.id, a.generated);
          items.push({ kind: 'alerts' as const, id: al.id, rev: 0, ts: al.ts, body: al });
        }
      }
      if (items.length > 0) {
        const r = a.outbox.append(items);
        if (r.error) throw r.error;
        a.uplink.notify();
      }
    }
  }, 100);
  const report = () => {
    let generated = 0;
    let pending = 0;
    const byUrl: Record<string, number> = {};
    let requeued = 0;
    for (const a of agents) {
      generated += a.generated;
      pending += a.outbox.stats().items;
      const st = a.uplink.state();
      requeued += st.requeuedItems;
      const u = st.connected ? (st.url ?? '?') : 'disconnected';
      byUrl[u] = (byUrl[u] ?? 0) + 1;
    }
    return { generated, pending, byUrl, requeued };
  };
  const tick = setInterval(() => {
    const r = report();
    const finished = r.generated === cfg.agents * cfg.items && r.pending === 0;
    process.stdout.write(`${JSON.stringify({ ...r, done: finished })}\n`);
    if (finished && !done) {
      done = true;
      clearInterval(gen);
      clearInterval(tick);
      void Promise.all(agents.map((a) => a.uplink.stop())).then(() => {
        for (const a of agents) a.outbox.close();
        process.exit(0);
      });
    }
  }, 500);
}

if (process.argv.includes('--config')) await main();
