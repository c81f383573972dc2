// `npm run demo` as a user runs it, bounded: DEMO_DURATION=20s, plain output (no TTY). The whole chain
// must work (readings in, summaries in Kafka and InfluxDB) and nothing the demo started may outlive it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { groupAlive } from '../../scripts/demo/children.ts';
import { repoRoot } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = repoRoot();

/** Runs scripts/demo.sh with plain output in a directory of its own; `onStderr` sees stderr as it comes. */
function runDemo(duration: string, onStderr: (all: string) => void = () => {}) {
  // Its own directory and agent id, so a developer's `npm run demo` in the same checkout is untouched
  // and the InfluxDB counts (filtered by agent) are this run's.
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-demo-'));
  const agent = `demo-test-${process.pid}-${Date.now().toString(36)}`;
  const proc = spawn('bash', ['scripts/demo.sh'], {
    cwd: ROOT,
    env: { ...process.env, DEMO_DURATION: duration, DEMO_PLAIN: '1', DEMO_DIR: dir, DEMO_AGENT: agent },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = { stdout: '', stderr: '', code: null as number | null };
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (r.stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    r.stderr += d;
    onStderr(r.stderr);
  });
  const killer = setTimeout(() => proc.kill('SIGKILL'), 200_000);
  const done = once(proc, 'exit').then(([code]) => {
    clearTimeout(killer);
    r.code = code as number | null;
    rmSync(dir, { recursive: true, force: true });
    return r;
  });
  return { done };
}

/** name → pid from the demo's "children: name=pid ..." line on stderr. */
function childPids(stderr: string): Record<string, number> | null {
  const m = /children: (.*)/.exec(stderr);
  return m
    ? Object.fromEntries(m[1]!.split(' ').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]))
    : null;
}

/** `key=value` pairs of one plain view line. */
function fields(line: string): Record<string, string> {
  return Object.fromEntries(
    line
      .split(' ')
      .map((p) => p.split('='))
      .filter((kv) => kv.length === 2) as [string, string][],
  );
}

test('npm run demo (DEMO_DURATION=20s): readings flow, summaries land in Kafka and InfluxDB, no child left behind', {
  timeout: 240_000,
}, async () => {
  const { stdout, stderr, code } = await runDemo('20s').done;
  const context = `\n--- stdout ---\n${stdout}\n--- stderr (tail) ---\n${stderr.slice(-3000)}`;
  {
    assert.equal(code, 0, `demo exited ${code}${context}`);

    // The children, as the demo announced them; each led its own process group.
    const children = childPids(stderr);
    assert.ok(children, `no children line${context}`);
    const pids = Object.values(children);
    assert.deepEqual(Object.keys(children).sort(), [
      'agent',
      'collector',
      'sim-broker',
      'sim-mqtt',
      'sim-serial',
      'socat',
    ]);
    // Every group is gone (a short wait: the kernel reaps the last member asynchronously).
    await waitFor('no demo process left', () => pids.every((pid) => !groupAlive(pid)), { timeoutMs: 5000 });

    const view = stdout.split('\n').filter((l) => l.startsWith('t='));
    assert.ok(view.length >= 10, `expected a line per second${context}`);
    const finalLine = stdout.split('\n').find((l) => l.startsWith('final: '));
    assert.ok(finalLine, `no final line${context}`);
    const f = fields(finalLine.slice('final: '.length));
    assert.ok(Number(f.readings) > 0, `readings ${f.readings}${context}`);
    assert.ok(Number(f.windows_closed) > 0, `windows_closed ${f.windows_closed}${context}`);
    assert.ok(Number(f.kafka_summaries) > 0, `kafka_summaries ${f.kafka_summaries}${context}`);
    assert.ok(Number(f.influx_summaries) > 0, `influx_summaries ${f.influx_summaries}${context}`);
    assert.equal(f.dead, '-', `a child died during the run${context}`);
    // How to look at the data is printed at the end.
    assert.match(stdout, /kcat -C -b \S+ -t edgeflow\.summaries -o -5 -e/);
    assert.match(stdout, /curl -sG -u \S+ '\S+\/query'/);
  }
});

test('a child that dies is shown in the view with its exit, the others are still stopped, exit 1', {
  timeout: 240_000,
}, async () => {
  let killed: number | null = null;
  const { stdout, stderr, code } = await runDemo('12s', (err) => {
    const pids = killed === null ? childPids(err) : null;
    if (pids?.['sim-mqtt']) {
      killed = pids['sim-mqtt'];
      process.kill(killed, 'SIGKILL');
    }
  }).done;
  const context = `\n--- stdout ---\n${stdout}\n--- stderr (tail) ---\n${stderr.slice(-3000)}`;
  assert.ok(killed, `never saw the children line${context}`);
  assert.equal(code, 1, context);
  assert.match(stdout, /^t=.* dead=sim-mqtt:SIGKILL$/m, context);
  assert.match(stdout, /demo: sim-mqtt exited during the run \(SIGKILL\)/, context);
  assert.match(stdout, /^final: .* dead=sim-mqtt:SIGKILL$/m, context);
  const pids = Object.values(childPids(stderr)!);
  await waitFor('no demo process left', () => pids.every((pid) => !groupAlive(pid)), { timeoutMs: 5000 });
});
