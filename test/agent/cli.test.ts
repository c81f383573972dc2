// SPEC.md section 1: check-config prints one line per problem and exits 2; --help/--version; unknown
// flags are an error. Runs the real command line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir, writeConfig } from '../helpers/agent-process.ts';

function agentCli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--version prints the version', () => {
  const r = agentCli('--version');
  assert.equal(r.code, 0);
  assert.match(r.out, /^\d+\.\d+\.\d+/);
});

test('unknown flags are an error (exit 2)', () => {
  const r = agentCli('check-config', '--config', 'x.yaml', '--frobnicate');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown option '--frobnicate'/);
});

test('check-config: a bad config gives one `path: message` line per problem and exit 2', () => {
  const dir = tempDir();
  const cfg = writeConfig(dir, {
    agent: { id: 'bad id!', dataDir: dir },
    sources: [
      { type: 'serial', name: 'a', path: '/dev/ttyUSB0', baudRate: -5 },
      { type: 'mqtt', name: 'a', url: 'http://x', topics: ['t/#'], format: 'number' },
    ],
    watermark: { maxOutOfOrder: '5 parsecs' },
    windows: [{ name: 'w', type: 'hopping', size: '10s' }],
    rules: [
      {
        name: 'r',
        match: { metric: 'temperature' },
        on: 'window:nope',
        kind: 'threshold',
        when: 'value > ',
        severity: 'critical',
      },
    ],
    uplink: { urls: [] },
  });
  const r = agentCli('check-config', '--config', cfg);
  assert.equal(r.code, 2, r.err);
  const lines = r.err.trim().split('\n');
  const expectPrefixes = [
    'agent.id: ',
    'sources.0.baudRate: ',
    'sources.1.url: ',
    'watermark.maxOutOfOrder: ',
    'windows.0.slide: ',
    'uplink.urls: ',
  ];
  for (const p of expectPrefixes)
    assert.ok(
      lines.some((l) => l.startsWith(p)),
      `missing a line starting "${p}" in:\n${r.err}`,
    );
  assert.ok(
    lines.some((l) => l.startsWith('rules.0.')),
    `no rules problem in:\n${r.err}`,
  );
  for (const l of lines) assert.match(l, /^[\w.]+: \S/, `not a "path: message" line: ${l}`);
});

test('check-config: YAML syntax error is reported with its position, exit 2', () => {
  const dir = tempDir();
  const path = join(dir, 'broken.yaml');
  writeFileSync(path, 'agent:\n  id: [oops\n');
  const r = agentCli('check-config', '--config', path);
  assert.equal(r.code, 2);
  assert.match(r.err, /^line \d+, column \d+: /);
});

test('check-config: a missing file is a clear error, exit 2', () => {
  const r = agentCli('check-config', '--config', '/nonexistent/agent.yaml');
  assert.equal(r.code, 2);
  assert.match(r.err, /cannot read config file \(ENOENT\)/);
});

test('every sample config in the repo passes check-config', () => {
  const samples: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/^agent.*\.ya?ml$/.test(e.name) || /\.agent\.ya?ml$/.test(e.name)) samples.push(p);
    }
  };
  walk(join(ROOT, 'deploy'));
  walk(join(ROOT, 'agent'));
  assert.ok(samples.length >= 1, 'no sample agent configs found');
  for (const s of samples) {
    // --schema-only: the samples name files of the machine they are written for (/etc/edgeflow/...).
    const r = agentCli('check-config', '--schema-only', '--config', s);
    assert.equal(r.code, 0, `${s}:\n${r.err}`);
  }
});

test('status: asks a running agent and prints link, outbox, rates and alerts; an unreachable agent is exit 1', async () => {
  const { startAgent } = await import('../helpers/agent-process.ts');
  const dir = tempDir();
  const agent = await startAgent(
    writeConfig(dir, { agent: { id: 'status-gw', dataDir: dir }, http: { listen: '127.0.0.1:0' } }),
  );
  try {
    const r = agentCli('status', '--url', agent.url, '--interval', '0.5');
    assert.equal(r.code, 0, r.err);
    for (const head of [
      'agent        status-gw',
      'uplink       not configured',
      'outbox       0 items',
      'rates        0.0 readings/s',
      'alerts       0 firing',
    ]) {
      assert.ok(r.out.includes(head), `missing "${head}" in:\n${r.out}`);
    }
    const json = agentCli('status', '--url', agent.url, '--json', '--interval', '0');
    assert.equal(JSON.parse(json.out).agent, 'status-gw');
  } finally {
    await agent.stop();
  }
  const down = agentCli('status', '--url', 'http://127.0.0.1:9', '--interval', '0');
  assert.equal(down.code, 1);
  assert.match(down.err, /cannot reach the agent at http:\/\/127\.0\.0\.1:9/);
});
