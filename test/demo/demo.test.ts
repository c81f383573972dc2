// `npm run demo` as a user runs it, bounded: DEMO_DURATION=20s, plain output (no TTY). The whole chain
// must work (readings in, summaries in Kafka and InfluxDB) and nothing the demo started may outlive it:
// not on a duration, nor a child's death, nor a closed terminal (SIGHUP, issue 12 item 7); and a demo
// that was killed outright has its leftovers stopped by the next one in the same directory, never a
// process that only reuses a recorded pid.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { groupAlive } from '../../scripts/demo/children.ts';
import { processStart } from '../../scripts/demo/pidfiles.ts';
import { killAll, running, spawnTracked } from '../helpers/processes.ts';
import { repoRoot } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = repoRoot();
const dirs: string[] = [];
after(async () => {
  await killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A directory and agent id of a test's own, so a developer's `npm run demo` here is untouched. */
function demoEnv(duration: string, dir?: string): NodeJS.ProcessEnv {
  const d = dir ?? mkdtempSync(join(tmpdir(), 'edgeflow-demo-'));
  dirs.push(d);
  // The InfluxDB counts are filtered by agent, so they are this run's.
  const agent = `demo-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  return { ...process.env, DEMO_DURATION: duration, DEMO_PLAIN: '1', DEMO_DIR: d, DEMO_AGENT: agent };
}

/** Runs scripts/demo.sh with plain output; `onStderr` sees stderr as it comes. */
function runDemo(duration: string, onStderr: (all: string) => void = () => {}, dir?: string) {
  const env = demoEnv(duration, dir);
  const proc = spawnTracked('bash', ['scripts/demo.sh'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = { stdout: '', stderr: '', code: null as number | null };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (r.stdout += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    r.stderr += d;
    onStderr(r.stderr);
  });
  const done = once(proc, 'exit').then(([code]) => {
    r.code = code as number | null;
    return r;
  });
  return { proc, r, done, dir: env.DEMO_DIR! };
}

/** name → port from the demo's "ports: name=port ..." line. */
function demoPorts(text: string): Record<string, number> | null {
  const m = /ports: (.*)/.exec(text);
  return m
    ? Object.fromEntries(
        m[1]!
          .trim()
          .split(' ')
          .map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]),
      )
    : null;
}

/** True when nothing listens on 127.0.0.1:port (we can bind it). */
async function portFree(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  return ok;
}

/** Every recorded child group gone, every port free, no pid file left. */
async function assertAllGone(children: Record<string, number>, ports: Record<string, number>, dir: string) {
  const pids = Object.values(children);
  await waitFor('no demo process left', () => pids.every((pid) => !groupAlive(pid)), { timeoutMs: 30_000 });
  for (const [name, port] of Object.entries(ports))
    assert.ok(await portFree(port), `${name} port ${port} still held`);
  let left: string[] = [];
  try {
    left = readdirSync(join(dir, 'pids'));
  } catch {}
  assert.deepEqual(left, [], 'pid files of stopped children');
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

test('closing the terminal (SIGHUP) stops everything the demo started and frees its ports', {
  timeout: 240_000,
}, async () => {
  // The demo in a terminal of its own: `script` gives it a pty as controlling terminal in a new session.
  // SIGKILL to `script` closes the pty's master side, as a closed terminal window does, and the kernel
  // sends SIGHUP to the session (before issue 12 the demo died of it and its children ran on).
  const env = demoEnv('10m');
  delete env.DEMO_PLAIN; // the interactive view, as a user sees it
  const dir = env.DEMO_DIR!;
  const term = spawnTracked('script', ['-qfec', 'bash scripts/demo.sh', '/dev/null'], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  term.stdout!.setEncoding('utf8').on('data', (d: string) => (screen = (screen + d).slice(-200_000)));
  term.stderr!.resume();
  const up = await waitFor(
    'the demo to come up',
    () => (childPids(screen) && demoPorts(screen) ? true : null),
    {
      timeoutMs: 180_000,
    },
  );
  assert.ok(up);
  const children = childPids(screen)!;
  const ports = demoPorts(screen)!;
  const demoPid = Number(readFileSync(join(dir, 'demo.pid'), 'utf8').split(' ')[0]);
  assert.ok(processStart(demoPid) !== null, 'the demo runs');
  for (const [name, pid] of Object.entries(children)) assert.ok(groupAlive(pid), `${name} runs`);

  const closed = once(term, 'exit');
  term.kill('SIGKILL');
  await closed;
  // The demo stops its children in order (each gets 10 s before SIGKILL), then exits.
  await waitFor('the demo to exit after SIGHUP', () => processStart(demoPid) === null, { timeoutMs: 90_000 });
  await assertAllGone(children, ports, dir);
});

test('a demo killed outright: the next one in its directory stops what it left, and nothing else', {
  timeout: 240_000,
}, async () => {
  const first = runDemo('10m');
  const dir = first.dir;
  await waitFor('the first demo up', () => childPids(first.r.stderr) && demoPorts(first.r.stderr), {
    timeoutMs: 180_000,
  });
  const children = childPids(first.r.stderr)!;
  const ports = demoPorts(first.r.stderr)!;
  // SIGKILL to the demo alone: no chance to stop anything (its children lead groups of their own).
  first.proc.kill('SIGKILL');
  await first.done;
  for (const [name, pid] of Object.entries(children)) assert.ok(groupAlive(pid), `${name} left running`);

  // A process of someone else's under a pid file that names it with another start time (its pid was
  // reused): the next demo must leave it alone.
  const foreign = spawnTracked('sleep', ['600'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'pids', 'foreign.pid'), `${foreign.pid} 1\n`);

  const second = runDemo('10m', () => {}, dir);
  await waitFor(
    'the second demo to report the leftovers it stopped',
    () => /stopped what an earlier demo .* left running: (.*)/.exec(second.r.stderr),
    { timeoutMs: 60_000 },
  );
  second.proc.kill('SIGTERM'); // stops during its start, as Ctrl-C would
  const { code, stderr } = await second.done;
  const context = `\n--- second demo's stderr ---\n${stderr.slice(-3000)}`;
  assert.equal(code, 0, context);
  const stopped = /left running: (.*)/.exec(stderr)![1]!.trim().split(' ').sort();
  assert.deepEqual(
    stopped,
    Object.entries(children)
      .map(([n, p]) => `${n}=${p}`)
      .sort(),
    context,
  );
  await assertAllGone(children, ports, dir);
  assert.ok(running(foreign) && processStart(foreign.pid!) !== null, 'the foreign process still runs');
});
