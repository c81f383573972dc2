// Issue 5 "Proof", end to end with real processes and real services:
//
//   edgeflow-sim ×2 (4 devices on a socat pty, 6 over MQTT; malformed frames, late data, duplicates)
//     → edgeflow-agent (serial + mqtt sources, 1 s tumbling windows, a threshold rule, lateEvents: forward)
//     → edgeflow-collector (TCP listener, credentials from `add-agent`) → Kafka + InfluxDB 1.x (v1 API)
//                                                                     or Kafka + VictoriaMetrics (v2 API)
//
// The collector takes one `influx:` block (collector/config.ts), so the VictoriaMetrics leg is a second
// run of the same pipeline with its own collector.
//
// Accounting. The simulator's `readingsSent` counts distinct valid readings; malformed frames carry no
// reading and are not in it; a duplicate frame is in `duplicates` only (firmware-sim/README.md). The agent
// has no per-reading de-duplication: a duplicated frame is a second, identical reading that it counts and
// aggregates. Readings later than maxOutOfOrder + allowedLateness are not in any summary; with
// `lateEvents: forward` each is shipped raw (Kafka late topic) and counted in
// edgeflow_agent_late_events_total. So, per sink:
//
//   Σ summary.count (latest rev per id) = Σ readingsSent + Σ duplicates − late events
//
// Kafka is read with kafkajs (latest rev per edgeflow-id; copies of one (id, rev) are re-sends that
// consumers drop, counted and reported) and once with kcat; InfluxDB with InfluxQL (a point per series and
// time, so a rev+1 overwrites); VictoriaMetrics with its export API (max per series and time).
//
// The agent here is the released x64 single executable (issue 6: "the x64 executable runs the end-to-end
// test of the collector issue"), built by scripts/build-binaries.mjs (cached; serialised with the
// binaries test by a lock). EDGEFLOW_E2E_AGENT=source runs agent/main.ts through tsx instead.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { metricValue, ROOT, startAgent, writeConfig } from '../helpers/agent-process.ts';
import { freePort } from '../helpers/mosquitto.ts';
import { openPtyPair, type PtyPair } from '../helpers/pty.ts';
import { services } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  accountSummaries,
  addAgentCli,
  adopt,
  deleteTopics,
  type InfluxEndpoint,
  influxQL,
  influxSummary,
  kcatHeader,
  kcatRead,
  killAll,
  readTopic,
  safeId,
  startCollector,
  startSim,
  tempDir,
  victoriaDelete,
  victoriaSummary,
  writeText,
} from './kit.ts';

const SIM_SECONDS = Number(process.env.EDGEFLOW_E2E_SECONDS ?? 20);
const ptys: PtyPair[] = [];

after(async () => {
  await killAll();
  for (const p of ptys) await p.close().catch(() => {});
});

type Leg = 'influx1' | 'victoria';

async function runPipeline(leg: Leg): Promise<void> {
  const t0 = performance.now();
  const env = services();
  const agentId = safeId(`e2e-${leg}`);
  const dir = tempDir('edgeflow-e2e-');
  const topics = {
    summaries: `${agentId}.summaries`,
    alerts: `${agentId}.alerts`,
    status: `${agentId}.status`,
    late: `${agentId}.late`,
    deadletter: `${agentId}.deadletter`,
  };
  const brokers = env.kafka.brokers;

  // InfluxDB 1.x: a database of its own per run, written by the test user.
  const influx: InfluxEndpoint = {
    url: env.influx1.url,
    adminUser: env.influx1.adminUser,
    adminPassword: env.influx1.adminPassword,
  };
  const db = agentId.replace(/[^a-zA-Z0-9_]/g, '_');
  let influxYaml: string;
  if (leg === 'influx1') {
    await influxQL(influx, `CREATE DATABASE "${db}"`);
    await influxQL(influx, `GRANT ALL ON "${db}" TO "${env.influx1.username}"`);
    const pw = writeText(join(dir, 'influx-pw'), env.influx1.password);
    influxYaml = `influx: { url: "${env.influx1.url}", api: v1, db: "${db}", username: "${env.influx1.username}", passwordFile: "${pw}" }`;
  } else {
    const token = writeText(join(dir, 'vm-token'), 'unused-by-victoriametrics');
    influxYaml = `influx: { url: "${env.victoria.url}", api: v2, org: e2e, bucket: e2e, tokenFile: "${token}" }`;
  }

  // Collector: credentials through the CLI, Kafka topics created by the collector at start.
  const credentials = join(dir, 'agents.json');
  const secret = addAgentCli(agentId, credentials);
  const mqttPort = await freePort();
  const collectorYaml = writeText(
    join(dir, 'collector.yaml'),
    `collector: { id: e2e, dataDir: "${join(dir, 'collector-data')}" }
mqtt: { listen: ["tcp://127.0.0.1:${mqttPort}"], credentials: "${credentials}" }
http: { listen: "127.0.0.1:0" }
kafka:
  brokers: [${brokers.map((b) => `"${b}"`).join(', ')}]
  topics: { summaries: "${topics.summaries}", alerts: "${topics.alerts}", status: "${topics.status}", late: "${topics.late}", deadletter: "${topics.deadletter}" }
${influxYaml}
`,
  );
  const collector = await startCollector(collectorYaml, join(dir, 'collector.log'));

  // Agent: one serial source (socat pty) and one MQTT source (the test bed's Mosquitto).
  const pty = await openPtyPair();
  ptys.push(pty);
  const prefix = `e2e/${agentId}`;
  const agentCfg = writeConfig(dir, {
    agent: { id: agentId, dataDir: join(dir, 'agent-data') },
    sources: [
      { type: 'serial', name: 'line-a', path: pty.b, baudRate: 921600, format: 'json' },
      {
        type: 'mqtt',
        name: 'floor',
        url: env.mosquitto.url,
        topics: [`${prefix}/+/+`],
        topicPattern: `${prefix}/{device}/{metric}`,
        format: 'json',
      },
    ],
    watermark: { maxOutOfOrder: '500ms', idleTimeout: '1s' },
    windows: [
      {
        name: 't1s',
        match: { device: '*', metric: '*' },
        type: 'tumbling',
        size: '1s',
        aggregates: ['count', 'min', 'max', 'mean', 'sum', 'stddev', 'first', 'last', 'p50', 'p95'],
        allowedLateness: '1s',
        lateEvents: 'forward',
      },
    ],
    rules: [
      {
        name: 'warm',
        match: { metric: 'temperature' },
        on: 'reading',
        kind: 'threshold',
        when: 'value > 15',
        for: '1s',
        severity: 'warning',
      },
    ],
    uplink: {
      urls: [`mqtt://127.0.0.1:${mqttPort}`],
      username: agentId,
      passwordFile: writeText(join(dir, 'uplink-secret'), secret),
      batch: { maxItems: 200, maxDelay: '200ms' },
    },
    checkpoint: { interval: '200ms' },
    http: { listen: '127.0.0.1:0' },
  });
  const agent = await startAgent(agentCfg, agentBin ? { bin: [agentBin] } : {});
  adopt(agent.proc);
  await waitFor('agent sources up', async () => {
    const s = (await agent.status()).sources;
    return s['line-a']?.state === 'up' && s.floor?.state === 'up';
  });

  // Faults: 2 % malformed, 3 % of frames held back up to 4 s (beyond maxOutOfOrder + allowedLateness =
  // 1.5 s for many of them: late events; within it for others: rev+1), 2 % duplicated.
  const faults = [
    '--malformed',
    '0.02',
    '--out-of-order',
    '0.03',
    '--max-delay',
    '4s',
    '--duplicates',
    '0.02',
  ];
  const common = [
    '--rate',
    '10',
    '--metrics',
    'temperature,humidity',
    '--duration',
    `${SIM_SECONDS}s`,
    '--format',
    'json',
    ...faults,
  ];
  const serialSim = startSim(
    [
      '--devices',
      '4',
      '--device-prefix',
      'ser-',
      '--seed',
      `${leg}-s`,
      '--serial',
      pty.a,
      '--baud-rate',
      '921600',
      ...common,
    ],
    join(dir, 'sim-serial.json'),
  );
  const mqttSim = startSim(
    [
      '--devices',
      '6',
      '--device-prefix',
      'mq-',
      '--seed',
      `${leg}-m`,
      '--mqtt',
      env.mosquitto.url,
      '--topic-pattern',
      `${prefix}/{device}/{metric}`,
      '--qos',
      '1',
      ...common,
    ],
    join(dir, 'sim-mqtt.json'),
  );
  const reports = await Promise.all([serialSim.report, mqttSim.report]);
  const readingsSent = reports.reduce((a, r) => a + r.readingsSent, 0);
  const duplicates = reports.reduce((a, r) => a + r.duplicates, 0);
  const malformed = reports.reduce((a, r) => a + r.malformed, 0);
  assert.ok(readingsSent > 10 * 2 * 10 * SIM_SECONDS * 0.9, `sims sent only ${readingsSent} readings`);
  assert.ok(
    malformed > 0 && duplicates > 0 && reports.every((r) => r.outOfOrder > 0),
    JSON.stringify(reports.map((r) => [r.malformed, r.duplicates, r.outOfOrder])),
  );

  // The agent saw every frame: readings = distinct + duplicates; malformed = bad frames.
  const received = readingsSent + duplicates;
  await waitFor(
    `agent to take ${received} readings`,
    async () => metricValue(await agent.metrics(), 'edgeflow_agent_readings_in_total') === received,
    {
      timeoutMs: 60_000,
      progress: async () => metricValue(await agent.metrics(), 'edgeflow_agent_readings_in_total'),
    },
  ).catch(async (e) => {
    throw new Error(
      `${(e as Error).message}; has ${metricValue(await agent.metrics(), 'edgeflow_agent_readings_in_total')}`,
    );
  });
  // Everything emitted and delivered: no open window, empty outbox, empty collector spool.
  await waitFor(
    'windows closed, outbox and spool drained',
    async () => {
      const st = await agent.status();
      if (st.windows.openWindows !== 0 || st.outbox.items !== 0) return false;
      const cs = await collector.status();
      return cs.sinks.length === 2 && cs.sinks.every((s) => s.depth === 0);
    },
    {
      timeoutMs: 60_000, // of no progress: a loaded machine drains slower, not never
      intervalMs: 250,
      progress: async () => {
        const st = await agent.status();
        const cs = await collector.status();
        return st.outbox.items + st.windows.openWindows + cs.sinks.reduce((a, s) => a + s.depth, 0);
      },
    },
  );
  const m = await agent.metrics();
  assert.equal(metricValue(m, 'edgeflow_agent_bad_frames_total'), malformed, 'bad frames = malformed frames');
  const st = await agent.status();
  const late = st.windows.lateByWindow.t1s?.forwarded ?? 0;
  assert.ok(late > 0, 'some frames were later than the allowed lateness');
  const reemitted = st.windows.reemitted as number;
  assert.ok(reemitted > 0, 'some windows were updated by late data (rev+1)');
  const alertsOut = metricValue(m, 'edgeflow_agent_alerts_total');
  const expected = received - late;

  // Kafka (kafkajs): latest rev per edgeflow-id.
  const sumRecs = await readTopic(brokers, topics.summaries);
  const k = accountSummaries(sumRecs);
  assert.equal(k.conflicting, 0, 'copies of one (edgeflow-id, rev) are identical');
  assert.equal(k.sum, expected, 'kafka: Σ count (latest rev per edgeflow-id)');
  for (const r of sumRecs) {
    assert.equal(r.key, `${agentId}/${r.value.device}`);
    assert.equal(r.value.agent, agentId);
    assert.equal(r.id, r.value.id);
  }
  const lateRecs = await readTopic(brokers, topics.late);
  assert.equal(new Set(lateRecs.map((r) => r.id)).size, late, 'kafka: one late record per late event');
  const alertRecs = await readTopic(brokers, topics.alerts);
  assert.equal(
    new Set(alertRecs.map((r) => r.id)).size,
    alertsOut,
    'kafka: one alert record per alert transition',
  );
  // kcat (librdkafka, an independent client) sees the same records and headers.
  const kc = await kcatRead(brokers, topics.summaries);
  assert.equal(kc.length, sumRecs.length, 'kcat reads as many summary records as kafkajs');
  assert.ok(
    kc.every((r) => kcatHeader(r, 'edgeflow-id') === JSON.parse(r.payload!).id),
    'every record has header edgeflow-id = item id',
  );

  // InfluxDB or VictoriaMetrics.
  let sinkSum: number;
  let sinkPoints: number;
  if (leg === 'influx1') {
    const i = await influxSummary(influx, db, agentId);
    sinkSum = i.sum;
    sinkPoints = i.points;
  } else {
    const v = await victoriaSummary(env.victoria.url, agentId);
    sinkSum = v.sum;
    sinkPoints = v.points;
  }
  console.log(
    `e2e ${leg}: expected=${expected} (readings ${readingsSent} + duplicates ${duplicates} - late ${late}; malformed ${malformed}) kafka=${k.sum} ${leg}=${sinkSum} ` +
      `records=${k.records} distinct(id,rev)=${k.distinct} ids=${k.ids} resent=${k.resent} points=${sinkPoints} rev+1=${reemitted} alerts=${alertsOut} ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  assert.equal(sinkSum, expected, `${leg}: Σ count`);
  // /metrics exports the engine's counters once per agent tick (250 ms): it catches up with /status.
  await waitFor(
    `edgeflow_agent_late_events_total to reach /status lateByWindow (${late})`,
    async () =>
      metricValue(await agent.metrics(), 'edgeflow_agent_late_events_total', { action: 'forwarded' }) ===
      late,
    { timeoutMs: 5000 },
  ).catch(async (e) => {
    throw new Error(
      `${(e as Error).message}; has ${metricValue(await agent.metrics(), 'edgeflow_agent_late_events_total', { action: 'forwarded' })}`,
    );
  });
  assert.equal(sinkPoints, k.ids, `${leg}: one point per summary id (no duplicate points)`);

  assert.equal(await agent.stop('SIGTERM'), 0);
  await collector.kill('SIGTERM');
  assert.equal(collector.proc.exitCode, 0);
  // Passed: leave nothing behind on the shared test bed (a failed run keeps its data to look at).
  if (leg === 'influx1') await influxQL(influx, `DROP DATABASE "${db}"`);
  else await victoriaDelete(env.victoria.url, agentId);
  await deleteTopics(brokers, Object.values(topics));
}

let agentBin: string | undefined;
before(() => {
  if (process.env.EDGEFLOW_E2E_AGENT === 'source') return;
  const build = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts/build-binaries.mjs'), '--arch', 'x64', '--entry', 'agent/main.ts'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 15 * 60_000,
    },
  );
  assert.equal(build.status, 0, 'scripts/build-binaries.mjs --arch x64 failed');
  agentBin = join(ROOT, 'dist', 'edgeflow-agent-linux-x64');
});

describe('issue 5: sim → agent → collector → Kafka + InfluxDB / VictoriaMetrics, exact accounting', {
  timeout: 300_000,
}, () => {
  test('Kafka + InfluxDB 1.x (v1 API)', { timeout: 150_000 }, () => runPipeline('influx1'));
  test('Kafka + VictoriaMetrics (v2 API)', { timeout: 150_000 }, () => runPipeline('victoria'));
});
