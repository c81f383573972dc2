// Issue 15's proof with real agents: one collector process (fleet control on, Kafka sink), three real
// agent processes (two under tsx, one the x64 single executable) and 1,000 simulated agents
// (firmware-sim/fleet-agents.ts) on the same collector, while readings flow into the real agents over the
// test bed's Mosquitto:
//   1. a rollout (a second window) reaches all 1,003 agents, the real ones forming the canary stage;
//   2. a document whose serial port does not exist rolls back on its own on the real agents (health
//      deadline), the rollout halts at the canary stage and no simulated agent receives it;
//   3. every reading published is counted exactly once in Kafka (Σ count of the unchanged window's
//      latest revisions) through both reconfigurations and the rollback.
// The rollout time is measured and printed, not asserted (BENCHMARKS.md). EDGEFLOW_SKIP_BINARIES=1 runs
// the third real agent under tsx instead of building the executable (printed).
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { SimFleetAgents } from '../../firmware-sim/fleet-agents.ts';
import {
  accountSummaries,
  COUNTING_WINDOW,
  type KafkaRec,
  kafkaTopics,
  kafkaYaml,
  readTopic,
  safeId,
} from '../e2e/kit.ts';
import { type AgentProcess, startAgent, writeConfig } from '../helpers/agent-process.ts';
import { killAll } from '../helpers/processes.ts';
import { services } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildRelease } from '../update/builds.ts';
import {
  type CollectorProc,
  type FleetBed,
  type FleetView,
  getJson,
  makeBed,
  simIds,
  startCollector,
} from './kit.ts';

const N_SIMS = Number(process.env.EDGEFLOW_FLEET_SIM_AGENTS ?? 1000);
const SKIP_SEA = process.env.EDGEFLOW_SKIP_BINARIES ? 'EDGEFLOW_SKIP_BINARIES is set' : null;
const REAL = ['real-a', 'real-b', 'real-sea'];
const sims = simIds(N_SIMS);
const ALL = N_SIMS + REAL.length;
const run = safeId('fleetreal');
const topics = kafkaTopics(run);
// COUNTING_WINDOW is kept unchanged by every config pushed here (its state survives the reloads) and the
// count is taken on it.

let bed: FleetBed;
let collector: CollectorProc;
let fleetSims: SimFleetAgents;
const agents: AgentProcess[] = [];
let pub: MqttClient;
let sent = 0;
let publishing = true;
let publisher: Promise<void> = Promise.resolve();

const fleet = () => getJson<FleetView>(`${collector.http}/fleet`);
const prefixOf = (id: string) => `fleetreal/${run}/${id}`;

before(async () => {
  if (SKIP_SEA) console.log(`# real-agents: third agent under tsx, not the executable (${SKIP_SEA})`);
  const sea = SKIP_SEA ? null : buildRelease('A', '9.1.0-ota.a');
  const env = services();
  bed = await makeBed([...REAL, ...sims], kafkaYaml(env.kafka.brokers, topics));
  // The real agents are the canary stage (a selector instead of the kit's 5% share).
  const yaml = readFileSync(bed.configPath, 'utf8');
  writeFileSync(
    bed.configPath,
    yaml.replace(
      'rollout: { canaryShare: 0.05, maxFailureShare: 0.2 }',
      'rollout: { canary: { agents: ["real-*"] }, maxFailureShare: 0.2 }',
    ),
  );
  collector = await startCollector(bed.configPath);
  fleetSims = new SimFleetAgents({
    url: `mqtt://127.0.0.1:${bed.mqttPort}`,
    ids: sims,
    secret: bed.secret,
    publicKey: bed.publicKey,
  });
  await fleetSims.start(sims);
  for (const id of REAL) {
    const dir = join(bed.dir, id);
    const cfg = writeConfig(
      bed.dir,
      {
        agent: { id, dataDir: join(dir, 'data') },
        sources: [
          {
            type: 'mqtt',
            name: 'floor',
            url: env.mosquitto.url,
            topics: [`${prefixOf(id)}/+/+`],
            topicPattern: `${prefixOf(id)}/{device}/{metric}`,
            format: 'json',
          },
        ],
        watermark: { maxOutOfOrder: '500ms', idleTimeout: '1s' },
        windows: [COUNTING_WINDOW],
        uplink: {
          urls: [`mqtt://127.0.0.1:${bed.mqttPort}`],
          username: id,
          passwordFile: bed.secretFile,
          batch: { maxItems: 200, maxDelay: '200ms' },
        },
        checkpoint: { interval: '200ms' },
        http: { listen: '127.0.0.1:0' },
        fleet: { publicKeyFile: bed.publicKeyFile, healthDeadline: '10s' },
      },
      `${id}.yaml`,
    );
    let bin: string[] | undefined;
    if (id === 'real-sea' && sea) {
      // A copy: the executable's update state lives beside it (agent/update), not in dist/.
      const copy = join(bed.dir, 'edgeflow-agent');
      copyFileSync(sea.binary, copy);
      bin = [copy];
    }
    agents.push(await startAgent(cfg, bin ? { bin } : {}));
  }
  await waitFor(
    'every agent online on /fleet',
    async () => (await fleet()).agents.filter((a) => a.online).length === ALL,
    { timeoutMs: 120_000, progress: async () => (await fleet()).agents.filter((a) => a.online).length },
  );
  // Readings into the three real agents all along, QoS 1, counted when Mosquitto acknowledged them.
  pub = await mqtt.connectAsync(env.mosquitto.url, { clientId: `${run}-pub` });
  publisher = (async () => {
    for (let i = 0; publishing; i++) {
      // Wall-clock event times (the agent refuses readings far in the future), ~100 loops a second: a
      // steady load generator, not a synchronisation.
      const ts = Date.now();
      const acks = REAL.map((id) =>
        pub.publishAsync(`${prefixOf(id)}/dev${i % 4}/temperature`, JSON.stringify({ value: i, ts }), {
          qos: 1,
        }),
      );
      await Promise.all(acks);
      sent += REAL.length;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
});

after(async () => {
  publishing = false;
  await publisher.catch(() => {});
  await pub?.endAsync(true);
  await fleetSims?.stop();
  for (const a of agents) await a.stop('SIGKILL').catch(() => {});
  await killAll();
  if (bed) rmSync(bed.dir, { recursive: true, force: true });
});

test('a rollout reaches 3 real agents (canary, one the executable) and 1,000 simulated ones', {
  timeout: 300_000,
}, async () => {
  const t0 = performance.now();
  writeFileSync(
    join(bed.fleetDir, 'groups/all.yaml'),
    `kind: group
name: all
match: { agents: ["*"] }
config:
  windows:
    - ${JSON.stringify(COUNTING_WINDOW)}
    - { name: t5s, match: { device: "*", metric: "*" }, type: tumbling, size: 5s, aggregates: [count, mean] }
`,
  );
  const v = await waitFor(
    'all agents applied version 1',
    async () => {
      const f = await fleet();
      return f.rollout?.version === 1 && f.rollout.state === 'complete' ? f : null;
    },
    { timeoutMs: 120_000, progress: async () => (await fleet()).rollout?.progress.applied ?? 0 },
  );
  const seconds = (performance.now() - t0) / 1000;
  console.log(`# fleet rollout with real agents: ${ALL} agents applied version 1 in ${seconds.toFixed(2)} s`);
  assert.equal(v.rollout!.progress.applied, ALL);
  assert.deepEqual(
    v.rollout!.stages.map((s) => s.agents),
    [REAL.length, N_SIMS],
  );
  for (const a of agents) {
    const st = await a.status();
    assert.equal(st.fleet?.state, 'applied', `${st.agent}: ${JSON.stringify(st.fleet)}`);
    assert.equal(st.fleet?.version, 1);
  }
});

test('a document that breaks the source rolls back on the real agents; the rollout halts at the canary', {
  timeout: 300_000,
}, async () => {
  const simsReceived = fleetSims.counters.received;
  writeFileSync(
    join(bed.fleetDir, 'groups/broken.yaml'),
    `kind: group
name: broken
priority: 10
match: { agents: ["*"] }
config:
  sources:
    - { type: serial, name: line, path: /dev/edgeflow-no-such-tty, baudRate: 115200, format: json }
`,
  );
  const halted = await waitFor(
    'rollout 2 halted with every canary agent rolled back',
    async () => {
      const f = await fleet();
      return f.rollout?.version === 2 &&
        f.rollout.state === 'halted' &&
        f.rollout.progress.rolled_back === REAL.length
        ? f
        : null;
    },
    { timeoutMs: 180_000, progress: async () => (await fleet()).rollout?.progress.rolled_back ?? 0 },
  );
  assert.equal(halted.rollout!.stages[1]!.sent, false, 'the simulated agents were never sent version 2');
  assert.equal(fleetSims.counters.received, simsReceived, 'no simulated agent received anything');
  assert.equal(fleetSims.appliedAt(1), N_SIMS, 'the rest keep version 1');
  for (const a of agents) {
    const st = await a.status();
    assert.equal(st.fleet?.state, 'rolled_back', JSON.stringify(st.fleet));
    assert.equal(st.fleet?.version, 2);
    assert.match(st.fleet?.reason ?? '', /line|serial|no-such-tty|health/i);
    assert.equal(st.fleet?.lastKnownGood?.version, 1, 'back on version 1');
    assert.equal(
      (st.sources as Record<string, { state: string }>).floor?.state,
      'up',
      'the MQTT source is back',
    );
  }
  rmSync(join(bed.fleetDir, 'groups/broken.yaml'));
});

test('every reading published is counted exactly once in Kafka through both reconfigurations', {
  timeout: 300_000,
}, async () => {
  publishing = false;
  await publisher;
  let last = 0;
  const counted = (recs: KafkaRec[]) => recs.filter((r) => r.value?.window?.name === COUNTING_WINDOW.name);
  const acct = await waitFor(
    `Σ count of ${COUNTING_WINDOW.name} in Kafka = ${sent}`,
    async () => {
      const a = accountSummaries(counted(await readTopic(services().kafka.brokers, topics.summaries)));
      last = a.sum;
      return a.sum >= sent ? a : null;
    },
    { timeoutMs: 180_000, progress: () => last },
  );
  assert.equal(acct.sum, sent, `Kafka has ${acct.sum} readings of ${sent} published`);
  assert.equal(acct.conflicting, 0);
  console.log(`# real agents: ${sent} readings, ${acct.ids} summaries, ${acct.resent} re-sent records`);
});
