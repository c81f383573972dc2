// Issue 5 "Proof" under faults: the pipeline of pipeline.test.ts (sim → agent → collector → Kafka +
// InfluxDB 1.x) keeps its exact accounting while, during one continuous simulator run,
//
//   t≈ 8 s   the collector is SIGKILLed and restarted
//   t≈30 s   Kafka stops for 60 s          (t≈30-90)
//   t≈45 s   the collector is SIGKILLed again and restarts while Kafka is down (spool full of backlog)
//   t≈60 s   InfluxDB stops for 60 s       (t≈60-120; both down together for 30 s)
//   t≈100 s  the agent is SIGKILLed and restarted (InfluxDB still down)
//
// Kafka and InfluxDB are PRIVATE instances (test/helpers/private-services.ts) on free ports: the shared
// test bed stays up for the other tests running concurrently. The MQTT sensors publish to a private
// Mosquitto with the gateway config we ship (persistence, no queue limit: deploy/mosquitto/gateway.conf),
// so frames that arrive while the agent is dead wait in its persistent session.
//
// Serial frames cannot be redelivered: what the agent had read but not yet checkpointed is lost when it
// dies (docs/design/delivery.md). So the serial simulator runs during the first phase only, and the agent
// is killed after its serial readings are in a checkpoint; the MQTT simulator runs throughout.
//
// Accounting as in pipeline.test.ts: Σ count = Σ readingsSent + Σ duplicates − late events. The agent's
// counters do not survive a SIGKILL in /metrics, so the late events are counted where they land: distinct
// edgeflow-ids on the Kafka late topic (cross-checked against the agent's /status, whose engine counters
// are restored from the checkpoint).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type AgentProcess, metricValue, startAgent, writeConfig } from '../helpers/agent-process.ts';
import { type Broker, freePort, startMosquitto } from '../helpers/mosquitto.ts';
import {
  type PrivateInflux,
  type PrivateKafka,
  startInfluxV1,
  startKafka,
} from '../helpers/private-services.ts';
import { openPtyPair, type PtyPair } from '../helpers/pty.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  accountSummaries,
  addAgentCli,
  adopt,
  type CollectorProc,
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
  writeText,
} from './kit.ts';

const OUTAGE_S = Number(process.env.EDGEFLOW_E2E_OUTAGE_S ?? 60);
// The MQTT simulator outlasts the last fault by 15 s.
const MQTT_SECONDS = 60 + OUTAGE_S + 15;

let kafka: PrivateKafka | undefined;
let influx: PrivateInflux | undefined;
let sensors: Broker | undefined;
let pty: PtyPair | undefined;
/** Directories removed after a passed run (a failed one keeps its logs and data to look at). */
const cleanup: string[] = [];

after(async () => {
  await killAll();
  await kafka?.kill().catch(() => {});
  await influx?.kill().catch(() => {});
  await sensors?.stop().catch(() => {});
  await pty?.close().catch(() => {});
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

test(`faults during the run (collector kill -9, Kafka ${OUTAGE_S} s down, InfluxDB ${OUTAGE_S} s down, agent kill -9): exact accounting`, {
  timeout: 480_000,
}, async () => {
  const tSetup = performance.now();
  // Each assigned as soon as it is up, so after() stops those that started when another one failed.
  await Promise.all([
    startKafka().then((k) => (kafka = k)),
    startInfluxV1().then((i) => (influx = i)),
    startMosquitto({ gateway: true }).then((b) => (sensors = b)),
    openPtyPair().then((p) => (pty = p)),
  ]);
  if (!kafka || !influx || !sensors || !pty) throw new Error('unreachable: every start resolved');
  const agentId = safeId('e2e-faults');
  const dir = tempDir('edgeflow-e2e-faults-');
  const db = 'edgeflow_e2e';
  await influxQL({ url: influx.url }, `CREATE DATABASE "${db}"`);
  const topics = {
    summaries: `${agentId}.summaries`,
    alerts: `${agentId}.alerts`,
    status: `${agentId}.status`,
    late: `${agentId}.late`,
    deadletter: `${agentId}.deadletter`,
  };

  const credentials = join(dir, 'agents.json');
  const secret = addAgentCli(agentId, credentials);
  const mqttPort = await freePort();
  const collectorYaml = writeText(
    join(dir, 'collector.yaml'),
    `collector: { id: e2e-faults, dataDir: "${join(dir, 'collector-data')}" }
mqtt: { listen: ["tcp://127.0.0.1:${mqttPort}"], credentials: "${credentials}" }
http: { listen: "127.0.0.1:0" }
kafka:
  brokers: ["${kafka.brokers[0]}"]
  topics: { summaries: "${topics.summaries}", alerts: "${topics.alerts}", status: "${topics.status}", late: "${topics.late}", deadletter: "${topics.deadletter}" }
influx: { url: "${influx.url}", api: v1, db: "${db}", timeout: 5s }
`,
  );
  const collectorLog = join(dir, 'collector.log');
  let collector: CollectorProc = await startCollector(collectorYaml, collectorLog);

  const prefix = `e2e/${agentId}`;
  const agentCfg = writeConfig(dir, {
    agent: { id: agentId, dataDir: join(dir, 'agent-data') },
    sources: [
      { type: 'serial', name: 'line-a', path: pty.b, baudRate: 921600, format: 'json' },
      {
        type: 'mqtt',
        name: 'floor',
        url: sensors.url,
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
        aggregates: ['count', 'min', 'max', 'mean', 'sum', 'p95'],
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
  let agent: AgentProcess = await startAgent(agentCfg);
  adopt(agent.proc);
  await waitFor('agent sources up', async () => {
    const s = (await agent.status()).sources;
    return s['line-a']?.state === 'up' && s.floor?.state === 'up';
  });
  console.log(
    `e2e faults: setup ${((performance.now() - tSetup) / 1000).toFixed(1)}s (private kafka ${kafka.brokers[0]}, influx ${influx.url})`,
  );

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
  const common = ['--rate', '5', '--metrics', 'temperature,humidity', '--format', 'json', ...faults];
  const t0 = performance.now();
  const at = async (s: number) => {
    const ms = t0 + s * 1000 - performance.now();
    if (ms > 0) await delay(ms); // letting time pass (an outage), not a synchronisation
  };
  const mark = (what: string) =>
    console.log(`e2e faults: t=${((performance.now() - t0) / 1000).toFixed(1)}s ${what}`);
  const serialSim = startSim(
    [
      '--devices',
      '4',
      '--device-prefix',
      'ser-',
      '--seed',
      'faults-s',
      '--duration',
      '20s',
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
      'faults-m',
      '--duration',
      `${MQTT_SECONDS}s`,
      '--mqtt',
      sensors.url,
      '--topic-pattern',
      `${prefix}/{device}/{metric}`,
      '--qos',
      '1',
      ...common,
    ],
    join(dir, 'sim-mqtt.json'),
  );

  // 1. collector kill -9 and restart (same ports, same spool).
  await at(8);
  await collector.kill('SIGKILL');
  mark('collector SIGKILLed');
  collector = await startCollector(collectorYaml, collectorLog);
  mark('collector restarted');

  // The serial phase ends; its readings must be in a checkpoint before the agent may be killed.
  const serialReport = await serialSim.report;
  const serialReceived = serialReport.readingsSent + serialReport.duplicates;
  await waitFor(
    `agent to take the ${serialReceived} serial readings`,
    async () =>
      metricValue(await agent.metrics(), 'edgeflow_agent_readings_in_total', { source: 'line-a' }) ===
      serialReceived,
    {
      timeoutMs: 30_000,
      progress: async () =>
        metricValue(await agent.metrics(), 'edgeflow_agent_readings_in_total', { source: 'line-a' }),
    },
  );
  const cp0 = metricValue(await agent.metrics(), 'edgeflow_agent_checkpoints_total', { result: 'ok' });
  await waitFor(
    'two more checkpoints',
    async () =>
      metricValue(await agent.metrics(), 'edgeflow_agent_checkpoints_total', { result: 'ok' }) >= cp0 + 2,
    { timeoutMs: 30_000 },
  );
  mark('serial phase done and checkpointed');

  // 2. Kafka down, then InfluxDB down (overlapping), then Kafka back.
  await at(30);
  await kafka.stop();
  mark('kafka stopped');
  await at(45);
  await collector.kill('SIGKILL');
  mark('collector SIGKILLed (Kafka down)');
  collector = await startCollector(collectorYaml, collectorLog);
  mark('collector restarted with Kafka unreachable');
  await at(60);
  await influx.stop();
  mark('influxdb stopped');
  await at(30 + OUTAGE_S);
  await kafka.start();
  mark('kafka started');

  // 3. agent kill -9 while InfluxDB is still down.
  await at(40 + OUTAGE_S);
  await agent.stop('SIGKILL');
  mark('agent SIGKILLed');
  agent = await startAgent(agentCfg);
  adopt(agent.proc);
  mark('agent restarted');

  await at(60 + OUTAGE_S);
  await influx.start();
  mark('influxdb started');

  const reports = [serialReport, await mqttSim.report];
  mark('mqtt sim done');
  const readingsSent = reports.reduce((a, r) => a + r.readingsSent, 0);
  const duplicates = reports.reduce((a, r) => a + r.duplicates, 0);
  const malformed = reports.reduce((a, r) => a + r.malformed, 0);
  assert.ok(
    readingsSent > 0.9 * (4 * 2 * 5 * 20 + 6 * 2 * 5 * MQTT_SECONDS),
    `sims sent only ${readingsSent} readings`,
  );

  // The outages happened and were seen by the collector (this collector process started while Kafka was down, before InfluxDB went down).
  const cm = await collector.metrics();
  assert.ok(
    metricValue(cm, 'edgeflow_collector_sink_errors_total', { sink: 'kafka' }) > 0,
    'the collector saw Kafka fail',
  );
  assert.ok(
    metricValue(cm, 'edgeflow_collector_sink_errors_total', { sink: 'influx' }) > 0,
    'the collector saw InfluxDB fail',
  );

  await waitFor(
    'windows closed, agent outbox and collector spool drained',
    async () => {
      const st = await agent.status();
      if (st.windows.openWindows !== 0 || st.outbox.items !== 0) return false;
      const cs = await collector.status();
      return cs.sinks.length === 2 && cs.sinks.every((s) => s.depth === 0);
    },
    {
      // Fails only when nothing moves for 90 s: on a loaded machine the backlog drains slower, not never.
      timeoutMs: 90_000,
      intervalMs: 500,
      progress: async () => {
        const st = await agent.status();
        const cs = await collector.status();
        return st.outbox.items + st.windows.openWindows + cs.sinks.reduce((a, s) => a + s.depth, 0);
      },
    },
  ).catch(async (e) => {
    throw new Error(
      `${(e as Error).message}; agent ${JSON.stringify((await agent.status()).outbox)}, collector ${JSON.stringify((await collector.status()).sinks)}`,
    );
  });
  mark('drained');

  const lateRecs = await readTopic(kafka.brokers, topics.late);
  const late = new Set(lateRecs.map((r) => r.id)).size;
  const st = await agent.status();
  assert.ok(late > 0, 'some frames were later than the allowed lateness');
  const expected = readingsSent + duplicates - late;

  const sumRecs = await readTopic(kafka.brokers, topics.summaries);
  const k = accountSummaries(sumRecs);
  const i = await influxSummary({ url: influx.url }, db, agentId);
  const kc = await kcatRead(kafka.brokers, topics.summaries);
  console.log(
    `e2e faults: expected=${expected} (readings ${readingsSent} + duplicates ${duplicates} - late ${late}; malformed ${malformed}) kafka=${k.sum} influx=${i.sum} ` +
      `records=${k.records} distinct(id,rev)=${k.distinct} ids=${k.ids} resent=${k.resent} late-records=${lateRecs.length} points=${i.points} ` +
      `agent-late=${st.windows.lateByWindow.t1s?.forwarded} ${((performance.now() - tSetup) / 1000).toFixed(1)}s`,
  );
  assert.equal(k.conflicting, 0, 'copies of one (edgeflow-id, rev) are identical');
  assert.equal(k.sum, expected, 'kafka: Σ count (latest rev per edgeflow-id)');
  assert.equal(i.sum, expected, 'influx: Σ count');
  assert.equal(i.points, k.ids, 'influx: one point per summary id');
  assert.equal(kc.length, sumRecs.length, 'kcat reads as many records as kafkajs');
  assert.ok(kc.every((r) => kcatHeader(r, 'edgeflow-id') === JSON.parse(r.payload!).id));
  // The agent's engine counters come back from its checkpoint: late events agree with Kafka.
  assert.equal(
    st.windows.lateByWindow.t1s?.forwarded,
    late,
    "agent /status late events (restored) = Kafka's late topic",
  );

  assert.equal(await agent.stop('SIGTERM'), 0);
  await collector.kill('SIGTERM');
  cleanup.push(dir, kafka.dir, influx.dir, sensors.dir);
});
