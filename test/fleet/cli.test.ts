// `edgeflow-collector fleet check` as a real process: a fleet repository's CI can validate documents
// without a collector; `fleet status` without a reachable collector says so (exit 1).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTestCerts } from '../helpers/certs.ts';
import { killAll, spawnTracked, stopProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  CLI,
  type FleetView,
  fleetCli,
  freePort,
  getJson,
  makeBed,
  ROOT,
  simIds,
  startCollector,
} from './kit.ts';

function cli(args: string[]) {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('fleet check: ok, or exit 2 with one `where: path: problem` line per problem', () => {
  const d = mkdtempSync(join(tmpdir(), 'edgeflow-fleetcli-'));
  try {
    mkdirSync(join(d, 'groups'));
    writeFileSync(
      join(d, 'groups/base.yaml'),
      'kind: group\nname: base\nmatch: { agents: ["gw-*"] }\nconfig: { windows: [{ name: w, match: { metric: t }, type: tumbling, size: 60s }] }\n',
    );
    const ok = cli(['fleet', 'check', '--dir', d, '--agents', 'gw-1,gw-2']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /ok \(1 documents, 2 of 2 agents get a config\)/);
    writeFileSync(
      join(d, 'groups/x.yaml'),
      'kind: group\nname: x\npriority: 1\nmatch: { agents: ["gw-1"] }\nconfig: { windows: [{ name: w, match: { metric: t }, type: tumbling }], agent: { id: evil } }\n',
    );
    const bad = cli(['fleet', 'check', '--dir', d, '--agents', 'gw-1,gw-2']);
    assert.equal(bad.code, 2);
    assert.deepEqual(bad.stderr.trim().split('\n'), [
      'groups/x.yaml: config.agent: not settable from the collector (fleet.allowedKeys: sources, windows, rules, watermark, uplink.batch, buffer, update.version)',
    ]);
    writeFileSync(
      join(d, 'groups/x.yaml'),
      'kind: group\nname: x\npriority: 1\nmatch: { agents: ["gw-1"] }\nconfig: { windows: [{ name: w, match: { metric: t }, type: tumbling }] }\n',
    );
    const merged = cli(['fleet', 'check', '--dir', d, '--agents', 'gw-1,gw-2']);
    assert.equal(merged.code, 2);
    assert.deepEqual(merged.stderr.trim().split('\n'), [
      'groups/base.yaml#base + groups/x.yaml#x: windows.0.size: required for tumbling windows (agents: gw-1)',
    ]);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('fleet status: an unreachable collector is exit 1 with a clear line; no target is exit 2', async () => {
  const port = await freePort();
  const r = cli(['fleet', 'status', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^fleet status: cannot reach the collector at http:\/\/127\.0\.0\.1:\d+/);
  const none = cli(['fleet', 'apply']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give --config collector\.yaml or --url/);
});

after(() => killAll());

test('collector `http.tls`: fleet status over HTTPS with --ca; without the CA the CLI says it cannot reach it (exit 1)', async () => {
  const bed = await makeBed(simIds(2));
  const certs = makeTestCerts(mkdtempSync(join(bed.dir, 'certs-')), { key: 'ec' });
  const yaml = readFileSync(bed.configPath, 'utf8');
  const withTls = yaml.replace(
    /^http: \{ listen: ([^ ]+) \}$/m,
    `http: { listen: $1, tls: { cert: ${certs.p('server.pem')}, key: ${certs.p('server.key')} } }`,
  );
  assert.notEqual(withTls, yaml, 'the bed has an http: line to extend');
  writeFileSync(bed.configPath, withTls);
  try {
    const collector = await startCollector(bed.configPath);
    assert.match(collector.http, /^https:\/\//);
    const ok = await fleetCli(['status', '--config', bed.configPath, '--ca', certs.p('ca.pem')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /agents/i);
    const untrusted = await fleetCli(['status', '--config', bed.configPath]);
    assert.equal(untrusted.code, 1);
    assert.match(
      untrusted.stderr,
      /^fleet status: cannot reach the collector at https:\/\/127\.0\.0\.1:\d+ \(.*certificate/,
    );
    await stopProcess(collector.proc);
  } finally {
    rmSync(bed.dir, { recursive: true, force: true });
  }
});

test('edgeflow-sim fleet-agents: a process of simulated agents gets a rollout and reports its counters', async () => {
  const n = 30;
  const bed = await makeBed(simIds(n));
  try {
    const collector = await startCollector(bed.configPath);
    const sim = spawnTracked(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'firmware-sim/main.ts'),
        'fleet-agents',
        '--url',
        `mqtt://127.0.0.1:${bed.mqttPort}`,
        '--public-key',
        bed.publicKeyFile,
        '--secret-file',
        bed.secretFile,
        '--count',
        String(n),
        '--labels',
        'site=north',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    sim.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    await waitFor('sim ready', () => out.includes('"ready":true'), { timeoutMs: 60_000 });
    writeFileSync(
      join(bed.fleetDir, 'groups/north.yaml'),
      'kind: group\nname: north\nmatch: { labels: { site: north } }\nconfig: { watermark: { maxOutOfOrder: 7s } }\n',
    );
    await waitFor(
      'all applied',
      async () => {
        const f = await getJson<FleetView>(`${collector.http}/fleet`);
        return f.rollout?.state === 'complete' && f.rollout.progress.applied === n;
      },
      { timeoutMs: 60_000 },
    );
    const exited = once(sim, 'exit');
    sim.kill('SIGTERM');
    await exited;
    const report = JSON.parse(out.trim().split('\n').at(-1)!);
    assert.equal(report.counters.applied, n);
    assert.deepEqual(report.appliedVersions, { '1': n });
    await stopProcess(collector.proc);
  } finally {
    rmSync(bed.dir, { recursive: true, force: true });
  }
});
