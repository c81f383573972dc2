// Issue 12, agent items 2, 3, 4 and 6, each with the input as written in the issue, against the real
// command line and real agent processes (loopback, port 0 where the agent allows it).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import {
  type AgentProcess,
  metricValue,
  ROOT,
  startAgent,
  tempDir,
  writeConfig,
} from '../helpers/agent-process.ts';
import { freePort } from '../helpers/mosquitto.ts';
import { services } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const AGENT = [process.execPath, '--import', 'tsx', join(ROOT, 'agent/main.ts')];

function agentCli(...args: string[]) {
  const r = spawnSync(AGENT[0]!, [...AGENT.slice(1), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** stderr lines that are not JSON log lines (the `path: problem` lines a person reads). */
function plainLines(err: string): string[] {
  return err.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}

function assertNoStack(err: string) {
  assert.doesNotMatch(err, /^\s+at /m, `a stack trace in:\n${err}`);
}

/** 9 levels of 9 aliases: 9^9 strings if expanded (the yaml library's alias limit refuses it). */
const ALIAS_BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  ...'bcdefghi'.split('').map((k, i) => {
    const prev = 'abcdefghi'[i]!;
    return `${k}: &${k} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }),
].join('\n');

const agents: AgentProcess[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const a of agents) await a.stop('SIGKILL');
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('issue 12 item 2: a config that fails to parse', () => {
  test('check-config on a YAML alias bomb: exit 2, one line, no stack trace', () => {
    const path = join(tempDir(), 'bomb.yaml');
    writeFileSync(path, ALIAS_BOMB);
    const r = agentCli('check-config', '--config', path);
    assert.equal(r.code, 2, r.err);
    assert.deepEqual(plainLines(r.err).length, 1, r.err);
    assert.match(r.err, /^\(root\): cannot expand the YAML: .*alias/);
    assertNoStack(r.err);
  });

  test('SIGHUP with an alias bomb keeps the running agent and its config, and logs one line', async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, {
      agent: { id: 'hup-bomb', dataDir: dir },
      http: { listen: '127.0.0.1:0' },
    });
    const agent = await startAgent(cfg);
    agents.push(agent);
    writeFileSync(cfg, ALIAS_BOMB);
    agent.proc.kill('SIGHUP');
    await waitFor('reload refused', () => agent.logs.some((l) => l.includes('reload refused')));
    assert.equal(agent.logs.filter((l) => l.includes('reload refused')).length, 1);
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
    assert.equal((await agent.status()).agent, 'hup-bomb');
    assert.equal(await agent.stop('SIGTERM'), 0);
  });
});

describe('issue 12 item 3: files and ports that check-config passed and run crashed on', () => {
  const dir = tempDir();
  const secret = join(dir, 'secret');
  writeFileSync(secret, 's3cret\n');
  const notPem = join(dir, 'ca.txt');
  writeFileSync(notPem, 'this is not a certificate\n');
  const caDir = join(dir, 'ca-dir');
  mkdirSync(caDir);
  const base = (extra: Record<string, unknown>) => ({
    agent: { id: 'files', dataDir: join(dir, 'data') },
    http: { listen: '127.0.0.1:0' },
    ...extra,
  });
  const uplink = (o: Record<string, unknown>) => ({
    uplink: { urls: ['mqtt://127.0.0.1:1'], username: 'files', passwordFile: secret, ...o },
  });
  const broker = (o: Record<string, unknown>) => ({
    sources: [
      {
        type: 'mqtt-broker',
        listen: '127.0.0.1:0',
        topicPattern: 'sensors/{device}/{metric}',
        username: 'sensor',
        ...o,
      },
    ],
  });
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'missing uplink.passwordFile',
      base(uplink({ passwordFile: join(dir, 'nope') })),
      /^uplink\.passwordFile: .*cannot read \(ENOENT\)$/,
    ],
    [
      'missing source passwordFile',
      base(broker({ passwordFile: join(dir, 'nope') })),
      /^sources\.0\.passwordFile: .*cannot read \(ENOENT\)$/,
    ],
    ['uplink.ca that is a directory', base(uplink({ ca: caDir })), /^uplink\.ca: .*is a directory/],
    ['a CA file that is not PEM', base(uplink({ ca: notPem })), /^uplink\.ca: .*no PEM certificate/],
    [
      'http.listen port 70000',
      { ...base({}), http: { listen: '127.0.0.1:70000' } },
      /^http\.listen: port must be 0-65535$/,
    ],
    [
      'missing sensor credentials file',
      base(broker({ username: undefined, credentials: join(dir, 'sensors.json') })),
      /^sources\.0\.credentials: .*does not exist/,
    ],
  ];
  for (const [name, config, line] of cases) {
    test(`${name}: check-config and run print one \`path: problem\` line, exit 2`, () => {
      const path = writeConfig(tempDir(), config);
      for (const cmd of ['check-config', 'run']) {
        const r = agentCli(cmd, '--config', path);
        assert.equal(r.code, 2, `${cmd}: ${r.err}`);
        const lines = plainLines(r.err);
        assert.equal(lines.length, 1, `${cmd}: ${r.err}`);
        assert.match(lines[0]!, line);
        assertNoStack(r.err);
      }
    });
  }

  test('http.listen on a port in use: run prints one line and exits 1', async () => {
    const busy = createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const port = (busy.address() as { port: number }).port;
    try {
      const path = writeConfig(tempDir(), { ...base({}), http: { listen: `127.0.0.1:${port}` } });
      const r = agentCli('run', '--config', path);
      assert.equal(r.code, 1, r.err);
      assert.deepEqual(plainLines(r.err), [`http.listen: 127.0.0.1:${port}: address in use (EADDRINUSE)`]);
      assertNoStack(r.err);
    } finally {
      busy.close();
    }
  });
});

describe('issue 12 item 4: command line', () => {
  test('an unknown top-level option or command is named (not "required option --config")', () => {
    const opt = agentCli('--frobnicate');
    assert.equal(opt.code, 2);
    assert.match(opt.err, /unknown option '--frobnicate'/);
    const cmd = agentCli('frobnicate');
    assert.equal(cmd.code, 2);
    assert.match(cmd.err, /unknown command 'frobnicate'/);
    for (const r of [opt, cmd]) assert.doesNotMatch(r.err, /required option/);
    const missing = agentCli('run');
    assert.equal(missing.code, 2);
    assert.match(missing.err, /required option '-c, --config <file>' not specified/);
  });

  test('--log-level is accepted by every command (SPEC.md section 1)', () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, { agent: { id: 'lv', dataDir: dir } });
    assert.equal(agentCli('check-config', '--config', cfg, '--log-level', 'debug').code, 0);
    const st = agentCli('status', '--url', 'http://127.0.0.1:9', '--interval', '0', '--log-level', 'warn');
    assert.equal(st.code, 1, st.err); // refused by the agent that is not there, not by the option parser
    const add = agentCli(
      'add-sensor',
      's1',
      '--credentials',
      join(dir, 'sensors.json'),
      '--log-level',
      'error',
    );
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /^[A-Za-z0-9_-]{43}\n$/);
    // run's --log-level is exercised by every startAgent() (test/helpers/agent-process.ts).
  });

  test('--interval abc is refused', () => {
    const r = agentCli('status', '--interval', 'abc');
    assert.equal(r.code, 2);
    assert.match(r.err, /--interval.*'abc' is invalid/);
  });

  test('status --url pointed at the collector: a clear error, exit 1, no TypeError', async () => {
    const dir = tempDir();
    const config = join(dir, 'collector.yaml');
    writeFileSync(
      config,
      `collector: { id: st, dataDir: ${join(dir, 'data')} }
mqtt: { listen: [tcp://127.0.0.1:0], credentials: ${join(dir, 'agents.json')} }
http: { listen: 127.0.0.1:0 }
`,
    );
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'collector/main.ts'), 'run', '--config', config],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(proc);
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const ready = await waitFor(
      'collector ready line',
      () => (out.includes('\n') ? (JSON.parse(out.split('\n')[0]!) as { http: string }) : null),
      { timeoutMs: 60_000 },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${err}`);
    });
    const r = agentCli('status', '--url', ready.http, '--interval', '0');
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /not an edgeflow agent status.*collector/);
    assert.doesNotMatch(r.err, /TypeError|oldestTs/);
    assertNoStack(r.err);
    proc.kill('SIGTERM');
    await once(proc, 'exit');
  });
});

describe('issue 12 item 6: uplink counters on /metrics', () => {
  test("a running agent's /metrics has the five edgeflow_agent_uplink_*_total counters, counting", async () => {
    const id = `hard-metrics-${process.pid}`;
    const port = await freePort();
    const closedPort = await freePort(); // nothing listens: the first URL fails, counted as an error
    const dir = tempDir();
    const cfg = writeConfig(dir, {
      agent: { id, dataDir: dir },
      sources: [
        {
          type: 'mqtt-broker',
          name: 'gw',
          listen: `127.0.0.1:${port}`,
          topicPattern: 'sensors/{device}/{metric}',
          format: 'json',
          allowAnonymous: true,
        },
      ],
      watermark: { maxOutOfOrder: '0s', idleTimeout: '10m' },
      windows: [{ name: 'w', type: 'tumbling', size: '1s', aggregates: ['count'] }],
      uplink: {
        urls: [`mqtt://127.0.0.1:${closedPort}`, services().mosquitto.url],
        batch: { maxItems: 10, maxDelay: '100ms' },
      },
      checkpoint: { interval: '100ms' },
      http: { listen: '127.0.0.1:0' },
    });
    const agent = await startAgent(cfg);
    agents.push(agent);
    await waitFor('uplink connected', async () => (await agent.status()).uplink?.connected === true, {
      timeoutMs: 60_000,
    });
    const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    // Readings 200 ms apart in event time over 6 s close several 1 s windows: summaries go up the link.
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    for (let i = 0; i < 30; i++)
      await sensor.publishAsync('sensors/d1/temp', JSON.stringify({ value: i, ts: base + i * 200 }), {
        qos: 1,
      });
    await sensor.endAsync();
    const text = await waitFor(
      'uplink items counted',
      async () => {
        const m = await agent.metrics();
        return metricValue(m, 'edgeflow_agent_uplink_items_total') > 0 ? m : undefined;
      },
      { timeoutMs: 60_000 },
    );
    for (const name of ['batches', 'items', 'requeued_items', 'reconnects', 'errors'])
      assert.match(text, new RegExp(`^# TYPE edgeflow_agent_uplink_${name}_total counter$`, 'm'), name);
    assert.ok(metricValue(text, 'edgeflow_agent_uplink_batches_total') > 0);
    assert.ok(
      metricValue(text, 'edgeflow_agent_uplink_errors_total') > 0,
      'the refused first URL is counted',
    );
    assert.equal(await agent.stop('SIGTERM'), 0);
  });
});
