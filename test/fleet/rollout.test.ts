// Fleet control end to end (issue 15) with a real collector process, its real embedded broker and 1,000
// simulated agents (firmware-sim/fleet-agents.ts: real MQTT clients that verify the signature, check
// the config with the agent schema and report). The tests run in order on one collector:
//   1. a rollout written to the fleet directory reaches every agent, canary first (time measured and
//      logged, not asserted); an agent offline during it converges when it connects;
//   2. an invalid fleet document is refused with `path: problem` lines, exit 2, nothing sent;
//   3. a config whose serial port does not exist rolls back on the canary, the rollout halts, the rest
//      never see it and keep their config; `fleet rollback` brings the canary back;
//   4. after a SIGKILL the collector restarts with its state; a document signed with another key is
//      refused by the agents (counted) and halts at the canary;
//   5. the broker ACL: no agent reads or writes another agent's downlink.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { SimFleetAgents } from '../../firmware-sim/fleet-agents.ts';
import { killAll, stopProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  type CollectorProc,
  type FleetBed,
  type FleetView,
  fleetCli,
  getJson,
  makeBed,
  simIds,
  startCollector,
} from './kit.ts';

const N = Number(process.env.EDGEFLOW_FLEET_SIM_AGENTS ?? 1000);
const ids = simIds(N);
const OFFLINE = ids.at(-1)!;
/** An agent of the rest stage (the canary is the first 5% of online agents). */
const REST = ids[Math.floor(N / 2)]!;
let bed: FleetBed;
let collector: CollectorProc;
let sims: SimFleetAgents;
const labels = (id: string) => ({ line: Number(id.slice(4)) % 2 === 0 ? 'a' : 'b' });

const BASE = `kind: group
name: all-sims
match: { agents: ["sim-*"] }
config:
  windows:
    - { name: temp-1m, match: { metric: temperature }, type: tumbling, size: 60s }
  rules: []
`;
const LINE_B = `kind: group
name: line-b
priority: 10
match: { labels: { line: b } }
config:
  watermark: { maxOutOfOrder: 10s }
`;

const fleet = () => getJson<FleetView>(`${collector.http}/fleet`);
const cliTarget = () => ['--url', collector.http, '--token-file', bed.tokenFile];

before(async () => {
  bed = await makeBed(ids);
  collector = await startCollector(bed.configPath);
  sims = new SimFleetAgents({
    url: `mqtt://127.0.0.1:${bed.mqttPort}`,
    ids,
    secret: bed.secret,
    publicKey: bed.publicKey,
    labels,
  });
  await sims.start(ids.filter((id) => id !== OFFLINE));
  // Every online agent's first status (labels) is in before the directory gets documents.
  await waitFor(
    'agents known with labels',
    async () => (await fleet()).agents.filter((a) => a.online).length === N - 1,
    {
      timeoutMs: 60_000,
      progress: async () => (await fleet()).agents.length,
    },
  );
});

after(async () => {
  if (process.env.EDGEFLOW_FLEET_DEBUG)
    console.log(sims?.lastError, collector ? readFileSync(collector.logFile, 'utf8').slice(-4000) : '');
  await sims?.stop();
  await killAll();
  if (bed) rmSync(bed.dir, { recursive: true, force: true });
});

test('a rollout from the fleet directory reaches every agent, canary first; an offline agent converges on reconnect', async () => {
  const t0 = performance.now();
  writeFileSync(join(bed.fleetDir, 'groups/base.yaml'), BASE);
  writeFileSync(join(bed.fleetDir, 'groups/line-b.yaml'), LINE_B);
  const v = await waitFor(
    'every online agent applied version 1',
    async () => {
      const f = await fleet();
      return f.rollout?.version === 1 && f.rollout.progress.applied === N - 1 ? f : null;
    },
    { timeoutMs: 60_000, progress: () => sims.appliedAt(1) },
  );
  const seconds = (performance.now() - t0) / 1000;
  // Measured, not asserted (issue 15 target: under 30 s for 1,000 agents); BENCHMARKS.md has the runs.
  console.log(
    `# fleet rollout: ${N - 1} agents applied version 1 in ${seconds.toFixed(2)} s (watch + canary + rest)`,
  );
  assert.equal(v.rollout!.stages[0]!.agents, Math.ceil(N * 0.05), 'a 5% canary stage');
  assert.equal(v.rollout!.state, 'rolling', 'not complete while an agent is offline');
  assert.equal(sims.appliedAt(1), N - 1);

  // Canary first: the rest were published only after every canary agent had reported.
  const canary = await getJson<{ desired: { sentAt: number } }>(
    `${collector.http}/fleet/agent?id=sim-0000`,
    bed.token,
  );
  const rest = await getJson<{ desired: { sentAt: number }; report: { at: number } }>(
    `${collector.http}/fleet/agent?id=${REST}`,
    bed.token,
  );
  const canaryReports = ids.slice(0, Math.ceil(N * 0.05)).map((id) => sims.state(id).report!.at);
  assert.ok(canary.desired.sentAt <= Math.min(...canaryReports));
  assert.ok(rest.desired.sentAt >= Math.max(...canaryReports), 'rest sent after the canary reported');

  // Merge order: line-b agents got the label group on top of the base group; line-a agents did not.
  const b = await getJson<{ desired: { config: Record<string, unknown>; from: string[] } }>(
    `${collector.http}/fleet/agent?id=sim-0001`,
    bed.token,
  );
  const a = await getJson<{ desired: { config: Record<string, unknown>; from: string[] } }>(
    `${collector.http}/fleet/agent?id=sim-0002`,
    bed.token,
  );
  assert.deepEqual(b.desired.from, ['groups/base.yaml#all-sims', 'groups/line-b.yaml#line-b']);
  assert.deepEqual(b.desired.config.watermark, { maxOutOfOrder: '10s' });
  assert.equal(a.desired.config.watermark, undefined);

  // The agent that was offline all along gets the retained document when it connects.
  assert.equal(sims.state(OFFLINE).applied.version, 0);
  await sims.start([OFFLINE]);
  await waitFor('rollout complete', async () => (await fleet()).rollout?.state === 'complete', {
    timeoutMs: 30_000,
  });
  assert.equal(sims.state(OFFLINE).applied.version, 1);
  assert.equal(sims.appliedAt(1), N);

  const st = await fleetCli(['status', ...cliTarget()]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /rollout r1 \(version 1, apply\): complete/);
  assert.match(st.stdout, new RegExp(`v1 applied: ${N}`));
});

test('an invalid fleet document is refused with path: problem lines (exit 2) and nothing is sent', async () => {
  const metricsBefore = await (await fetch(`${collector.http}/metrics`)).text();
  const publishedBefore = /edgeflow_collector_fleet_documents_published_total (\d+)/.exec(metricsBefore)![1];
  const received = sims.counters.received;
  writeFileSync(
    join(bed.fleetDir, 'groups/bad.yaml'),
    `kind: group
name: bad
priority: 5
match: { agents: ["sim-00*"] }
config:
  windows:
    - { name: vib, match: { metric: vibration }, type: tumbling, size: banana }
`,
  );
  const r = await fleetCli(['apply', ...cliTarget()]);
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.length >= 1);
  for (const l of lines) assert.match(l, /^groups\/.+: windows\.0\.size: .+/, l);
  assert.match(r.stderr, /groups\/base\.yaml#all-sims \+ groups\/bad\.yaml#bad: windows\.0\.size: /);
  // The watcher refused it too, and says so on /fleet.
  await waitFor('problems on /fleet', async () => (await fleet()).problems.length > 0);
  const diff = await fleetCli(['diff', ...cliTarget()]);
  assert.equal(diff.code, 2);
  rmSync(join(bed.fleetDir, 'groups/bad.yaml'));
  await waitFor('problems cleared', async () => (await fleet()).problems.length === 0);
  const metricsAfter = await (await fetch(`${collector.http}/metrics`)).text();
  assert.equal(
    /edgeflow_collector_fleet_documents_published_total (\d+)/.exec(metricsAfter)![1],
    publishedBefore,
  );
  assert.match(metricsAfter, /edgeflow_collector_fleet_apply_refused_total [1-9]/);
  assert.equal(sims.counters.received, received, 'no agent received anything');
  assert.equal((await fleet()).version, 1);
});

test('a config that cannot open its source rolls back on the canary: the rollout halts, the rest keep their config; rollback restores the canary', async () => {
  const restReceived = sims.state(REST).received;
  writeFileSync(
    join(bed.fleetDir, 'groups/serial.yaml'),
    `kind: group
name: serial
priority: 20
match: { agents: ["sim-*"] }
config:
  sources:
    - { type: serial, name: line-a, path: /dev/edgeflow-no-such-tty, baudRate: 115200, format: json }
`,
  );
  const diff = await fleetCli(['diff', ...cliTarget()]);
  // The watcher may already have started the rollout; diff compares with what agents were last sent.
  assert.ok(diff.code === 0, diff.stderr);
  const halted = await waitFor(
    'rollout halted',
    async () => {
      const f = await fleet();
      return f.rollout?.version === 2 && f.rollout.state === 'halted' ? f : null;
    },
    { timeoutMs: 60_000, progress: () => sims.counters.rolledBack },
  );
  const p = halted.rollout!.progress;
  assert.ok(
    p.rolled_back > Math.ceil(N * 0.05) * 0.2,
    `halted after more than 20% of the canary rolled back (${p.rolled_back})`,
  );
  assert.equal(p.applied, 0);
  assert.equal(halted.rollout!.stages[1]!.sent, false, 'the rest stage was never published');
  assert.match(halted.rollout!.haltReason!, /rejected or rolled back/);
  // The rest never received version 2 and stay on version 1; so does every agent (the canary rolled back).
  assert.equal(sims.state(REST).received, restReceived);
  assert.equal(sims.appliedAt(1), N);
  const st = await fleetCli(['status', ...cliTarget()]);
  assert.match(st.stdout, /rollout r2 \(version 2, apply\): halted/);
  const m = await (await fetch(`${collector.http}/metrics`)).text();
  assert.match(m, /edgeflow_collector_fleet_rollout_halted 1/);
  assert.match(m, /edgeflow_collector_fleet_agents\{version="2",state="rolled_back"\} [1-9]/);

  // Roll back: version 3 carries version 1's config to the agents that were sent version 2.
  const rb = await fleetCli(['rollback', ...cliTarget()]);
  assert.equal(rb.code, 0, rb.stderr);
  assert.match(rb.stdout, /rollout r3 \(version 3, rollback\)/);
  await waitFor('rollback complete', async () => (await fleet()).rollout?.state === 'complete', {
    timeoutMs: 30_000,
    progress: () => sims.appliedAt(3),
  });
  assert.equal(sims.appliedAt(3), halted.rollout!.stages[0]!.agents);
  assert.equal(sims.appliedAt(1) + sims.appliedAt(3), N);
  rmSync(join(bed.fleetDir, 'groups/serial.yaml'));
});

test('after SIGKILL the collector keeps its fleet state; a document signed with another key is refused by the agents and halts', async () => {
  await stopProcess(collector.proc, 'SIGKILL');
  writeFileSync(bed.keyFile, bed.otherKeyPem, { mode: 0o600 });
  collector = await startCollector(bed.configPath);
  await waitFor('agents back', async () => (await fleet()).agents.filter((a) => a.online).length === N, {
    timeoutMs: 90_000,
    progress: async () => (await fleet()).agents.filter((a) => a.online).length,
  });
  const f = await fleet();
  assert.equal(f.version, 3, 'versions survive the restart');
  assert.equal(f.rollout?.id, 'r3');
  // Retained documents were re-published byte for byte (signed by the old key): same version, ignored.
  assert.equal(sims.counters.refusedSignature, 0);
  writeFileSync(
    join(bed.fleetDir, 'groups/wm.yaml'),
    `kind: group\nname: wm\npriority: 30\nmatch: { agents: ["sim-*"] }\nconfig: { watermark: { idleTimeout: 45s } }\n`,
  );
  const halted = await waitFor(
    'rollout 4 halted',
    async () => {
      const v = await fleet();
      // Halted, and every canary agent's refusal in (the halt comes with the first few).
      return v.rollout?.version === 4 &&
        v.rollout.state === 'halted' &&
        v.rollout.progress.rejected === v.rollout.stages[0]!.agents
        ? v
        : null;
    },
    { timeoutMs: 60_000, progress: () => sims.counters.refusedSignature },
  );
  assert.ok(sims.counters.refusedSignature > 0);
  assert.equal(halted.rollout!.progress.rejected, sims.counters.refusedSignature);
  const rejected = halted.agents.find((a) => a.report?.version === 4);
  assert.match(rejected!.report!.reason!, /^unknown key/);
  assert.equal(sims.appliedAt(1) + sims.appliedAt(3), N, 'nobody applied the foreign document');
  const m = await (await fetch(`${collector.http}/metrics`)).text();
  assert.match(m, /edgeflow_collector_fleet_reports_total\{state="rejected"\} [1-9]/);
});

test('admin routes need the token: 401 without or with a wrong one; /fleet stays readable', async () => {
  const routes = [
    ['POST', '/fleet/apply'],
    ['POST', '/fleet/rollback'],
    ['POST', '/fleet/resume'],
    ['GET', '/fleet/diff'],
    ['GET', '/fleet/agent?id=sim-0001'],
  ] as const;
  for (const [method, path] of routes) {
    const none = await fetch(`${collector.http}${path}`, { method });
    assert.equal(none.status, 401, `${method} ${path} without a token`);
    const wrong = await fetch(`${collector.http}${path}`, {
      method,
      headers: { authorization: 'Bearer nope' },
    });
    assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
  }
  const get = await fetch(`${collector.http}/fleet/apply`);
  assert.equal(get.status, 405, 'apply is POST only');
  const f = await fleet();
  assert.equal(JSON.stringify(f).includes('"config"'), false, '/fleet carries no configs');
});

test("ACL: an agent can neither subscribe to nor publish on another agent's downlink", async () => {
  const before = sims.state('sim-0002').received;
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${bed.mqttPort}`, {
    username: 'sim-0001',
    password: bed.secret,
    clientId: 'acl-probe',
    reconnectPeriod: 0,
  });
  try {
    // SUBACK 0x80 for the filter [MQTT-3.9.3]; mqtt.js 5 turns it into an error carrying the packet.
    const refused = await c.subscribeAsync('edgeflow/v1/sim-0002/down', { qos: 1 }).then(
      (g) => g[0]!.qos === 128,
      (e: Error) => /Subscribe error/.test(e.message),
    );
    assert.ok(refused, "subscription to another agent's downlink refused");
    const own = await c.subscribeAsync('edgeflow/v1/sim-0001/down', { qos: 1 });
    assert.equal(own[0]!.qos, 1);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('edgeflow/v1/sim-0002/down', '{"forged":true}', { qos: 1 });
    await closed;
  } finally {
    await c.endAsync(true);
  }
  assert.equal(sims.state('sim-0002').received, before, 'the forged document reached nobody');
});
