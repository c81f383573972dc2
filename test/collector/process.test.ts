// The collector as a real process: CLI behaviour (check-config, add-agent, --version, unknown flags),
// an independent MQTT client (mosquitto_pub) refused and accepted, and the delivery promise under
// SIGKILL: a batch whose PUBACK the agent received is in the spool after a kill -9, and reaches
// InfluxDB once the collector is back.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { SpoolReader } from '../../collector/spool/spool.ts';
import { batch, summary } from '../../collector/test-support/fixtures.ts';
import { addAgent } from '../../shared/credentials.ts';
import { influxQuery, repoRoot, services, uniqueName } from '../helpers/services.ts';
import { TcpPlug } from '../helpers/tcp-plug.ts';
import { waitFor } from '../helpers/wait.ts';
import { FAST_SCRYPT } from './kit.ts';

const ROOT = repoRoot();
const CLI = [process.execPath, '--import', 'tsx', join(ROOT, 'collector/main.ts')];

function cli(args: string[]) {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Proc {
  proc: ChildProcess;
  port: number;
  http: string;
  stderr: string[];
}

async function startCollector(configPath: string): Promise<Proc> {
  const proc = spawn(CLI[0]!, [...CLI.slice(1), 'run', '--config', configPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const ready = await waitFor(
    'collector ready line',
    () => (out.includes('\n') ? JSON.parse(out.split('\n')[0]!) : null),
    { timeoutMs: 30_000 },
  ).catch((e) => {
    proc.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${stderr.join('')}`);
  });
  return { proc, port: ready.mqtt[0].port, http: ready.http, stderr };
}

function setup(agent: string, influxUrl: string) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-proc-'));
  const credentials = join(dir, 'agents.json');
  const i = services().influx1;
  const write = (url: string) => {
    const path = join(dir, 'collector.yaml');
    writeFileSync(
      path,
      `collector: { id: proc, dataDir: ${join(dir, 'data')} }
mqtt: { listen: [tcp://127.0.0.1:0], credentials: ${credentials} }
http: { listen: 127.0.0.1:0 }
influx: { url: ${url}, api: v1, db: ${i.db}, username: ${i.username}, password: ${i.password} }
`,
    );
    return path;
  };
  return { dir, credentials, config: write(influxUrl), rewrite: write, agent };
}

test('check-config: exit 0 when valid; exit 2 with one `path: message` line per problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-cli-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'collector: { dataDir: /tmp/x }\nmqtt: { credentials: /tmp/a.json }\n');
  const ok = cli(['check-config', '--config', good]);
  assert.equal(ok.code, 0, ok.stderr);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    'collector: { dataDir: /tmp/x, colour: red }\nmqtt: { credentials: /tmp/a.json, maxPacketSize: huge }\nspool: { maxBytes: -1 }\n',
  );
  const r = cli(['check-config', '--config', bad]);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 3, r.stderr);
  for (const l of lines) assert.match(l, /^[a-zA-Z.0-9()]+: /);
  const missing = cli(['run', '--config', join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read config file/);
});

test('--version, --help, unknown flags', () => {
  assert.match(cli(['--version']).stdout, /^\d+\.\d+\.\d+/);
  const help = cli(['--help']);
  assert.equal(help.code, 0);
  for (const c of ['run', 'add-agent', 'check-config']) assert.match(help.stdout, new RegExp(`\\b${c}\\b`));
  const bad = cli(['run', '--config', 'x.yaml', '--frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option/);
});

test('add-agent prints the secret once on stdout and stores only a salted hash (0600)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-cli-'));
  const path = join(dir, 'agents.json');
  const r = cli(['add-agent', 'gw-7', '--credentials', path]);
  assert.equal(r.code, 0, r.stderr);
  const secret = r.stdout.trim();
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  const text = readFileSync(path, 'utf8');
  assert.ok(!text.includes(secret));
  const entry = JSON.parse(text).agents['gw-7'];
  assert.deepEqual([entry.alg, entry.N, entry.r, entry.p], ['scrypt', 32768, 8, 1]);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(cli(['add-agent', 'bad id!', '--credentials', path]).code, 2);
});

test('mosquitto_pub (an independent client): wrong password refused and counted; right one accepted', async () => {
  const s = setup(uniqueName('proc-mq').replace(/[^a-zA-Z0-9._-]/g, '-'), services().influx1.url);
  const { secret } = await addAgent(s.credentials, s.agent, FAST_SCRYPT);
  const c = await startCollector(s.config);
  try {
    const pub = (password: string) =>
      spawnSync(
        'mosquitto_pub',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(c.port),
          '-V',
          'mqttv311',
          '-q',
          '1',
          '-u',
          s.agent,
          '-P',
          password,
          '-t',
          `edgeflow/v1/${s.agent}/summaries`,
          '-s',
        ],
        {
          input: batch(s.agent, [summary(s.agent, 'mq', Date.UTC(2024, 3, 1))]),
          encoding: 'utf8',
          timeout: 15_000,
        },
      );
    const refused = pub('wrong');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /not authori[sz]ed|bad user name or password|refused/i);
    const metrics = await (await fetch(`${c.http}/metrics`)).text();
    assert.match(metrics, /edgeflow_collector_rejected_total\{reason="bad_password"\} 1/);
    const ok = pub(secret);
    assert.equal(ok.status, 0, ok.stderr);
    await waitFor('in influx', async () => {
      const r = await influxQuery(`SELECT count("count") FROM edgeflow_summary WHERE agent = '${s.agent}'`);
      return r.results[0]?.series?.[0]?.values[0]?.[1] === 1;
    });
  } finally {
    c.proc.kill('SIGTERM');
    await once(c.proc, 'exit');
  }
});

test('SIGKILL right after PUBACK: the batch is in the spool on restart and then reaches InfluxDB', async () => {
  // InfluxDB unreachable on the first run, so the items can only be in the spool.
  const plug = new TcpPlug({ host: '127.0.0.1', port: 1 });
  await plug.up();
  await plug.down();
  const s = setup(uniqueName('proc-kill').replace(/[^a-zA-Z0-9._-]/g, '-'), `http://127.0.0.1:${plug.port}`);
  const { secret } = await addAgent(s.credentials, s.agent, FAST_SCRYPT);
  const c = await startCollector(s.config);
  const t0 = Date.UTC(2024, 4, 1);
  const items = Array.from({ length: 25 }, (_, i) => summary(s.agent, 'k', t0 + i * 60_000));
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${c.port}`, {
    username: s.agent,
    password: secret,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on('error', () => {});
  await client.publishAsync(`edgeflow/v1/${s.agent}/summaries`, batch(s.agent, items), { qos: 1 });
  c.proc.kill('SIGKILL'); // the instant the PUBACK arrived
  const [, signal] = (await once(c.proc, 'exit')) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');
  await client.endAsync(true).catch(() => {});

  const spool = new SpoolReader(join(s.dir, 'data', 'spool.db'));
  const rows = spool.read(0, 1000).filter((r) => r.kind === 'summaries');
  spool.close();
  assert.deepEqual(
    rows.map((r) => r.itemId).sort(),
    items.map((i) => i.id).sort(),
    'every acknowledged item is in the spool',
  );

  // Restart with InfluxDB reachable: the spool drains into it, exactly once.
  s.rewrite(services().influx1.url);
  const c2 = await startCollector(s.config);
  try {
    await waitFor('influx has the 25 items', async () => {
      const r = await influxQuery(`SELECT count("count") FROM edgeflow_summary WHERE agent = '${s.agent}'`);
      return r.results[0]?.series?.[0]?.values[0]?.[1] === 25;
    });
    const st = (await (await fetch(`${c2.http}/status`)).json()) as { sinks: { depth: number }[] };
    await waitFor(
      'spool drained',
      async () => ((await (await fetch(`${c2.http}/status`)).json()) as typeof st).sinks[0]?.depth === 0,
    );
  } finally {
    c2.proc.kill('SIGTERM');
    await once(c2.proc, 'exit');
  }
});
