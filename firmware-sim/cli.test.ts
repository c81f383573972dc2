import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { waitFor } from '../test/helpers/wait.ts';
import { CommanderError, parseArgs } from './cli.ts';

const BIN = new URL('../bin/edgeflow-sim.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'edgeflow-sim-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function sim(
  args: string[],
  onStart?: (p: ReturnType<typeof spawn>, out: () => Buffer) => void,
): Promise<Run> {
  const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => chunks.push(c));
  p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  onStart?.(p, () => Buffer.concat(chunks));
  return once(p, 'close').then(([code]) => ({
    code: code as number | null,
    stdout: Buffer.concat(chunks),
    stderr,
  }));
}

describe('edgeflow-sim command line', () => {
  it('parses a full command line', () => {
    const r = parseArgs(
      [
        '--devices',
        '12',
        '--rate',
        '0.5',
        '--metrics',
        'temperature,humidity',
        '--duration',
        '1m',
        '--serial',
        '/dev/pts/1',
        '--serial',
        '/dev/pts/2,/dev/pts/3',
        '--clock-skew',
        '2s',
        '--start-ts',
        '2024-01-01T00:00:00Z',
      ],
      0,
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.devices.length, 12);
    assert.equal(r.config.devices[0], 'dev-001');
    assert.equal(r.config.ticks, 30);
    assert.equal(r.config.endKind, 'duration');
    assert.deepEqual(r.config.output, {
      kind: 'serial',
      paths: ['/dev/pts/1', '/dev/pts/2', '/dev/pts/3'],
      baudRate: 115200,
    });
    assert.equal(r.config.clockSkewMs, 2000);
    assert.equal(r.config.startTs, Date.UTC(2024, 0, 1));
  });

  it('reports every problem as `--flag: message`', () => {
    const r = parseArgs([
      '--rate',
      '0',
      '--metrics',
      'temperature,pressure',
      '--malformed',
      '2',
      '--count',
      '5',
      '--duration',
      '1s',
      '--format',
      'number',
      '--stdout',
      '--max-delay',
      'soon',
    ]);
    assert.equal(r.ok, false);
    const flags = r.ok ? [] : r.problems.map((p) => p.split(':')[0]);
    for (const f of [
      '--rate',
      '--metrics',
      '--malformed',
      '--duration, --count',
      '--format',
      '--max-delay',
    ]) {
      assert.ok(flags.includes(f), `${f} in ${JSON.stringify(flags)}`);
    }
  });

  it('rejects combinations that cannot be decoded', () => {
    const problems = (args: string[]) => {
      const r = parseArgs(args);
      return r.ok ? [] : r.problems;
    };
    assert.match(
      problems(['--stdout', '--format', 'csv', '--group', '--metrics', 'temperature,current'])[0]!,
      /^--group:/,
    );
    assert.match(problems(['--stdout', '--format', 'kv', '--devices', '2'])[0]!, /^--format: kv/);
    assert.match(
      problems(['--mqtt', 'mqtt://h', '--format', 'json', '--group', '--metrics', 'temperature,current'])[0]!,
      /^--topic-pattern/,
    );
    assert.match(problems(['--stdout', '--mqtt', 'mqtt://h'])[0]!, /^output:/);
    assert.match(problems(['--stdout', '--device-prefix', 'a/b'])[0]!, /^--device-prefix/);
    assert.match(problems(['--mqtt', 'mqtt://h', '--mqtt-max-in-flight', '0'])[0]!, /^--mqtt-max-in-flight/);
    const ok = parseArgs(['--mqtt', 'mqtt://h', '--mqtt-max-in-flight', '40']);
    assert.ok(ok.ok && ok.config.output.kind === 'mqtt' && ok.config.output.maxInFlight === 40);
  });

  it('unknown flags throw a commander error', () => {
    assert.throws(
      () => parseArgs(['--stdout', '--nope']),
      (e) => e instanceof CommanderError && e.code === 'commander.unknownOption',
    );
  });

  it('exits 2 on an unknown flag, 0 on --help and --version', async () => {
    const bad = await sim(['--stdout', '--frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown option '--frobnicate'/);
    const help = await sim(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout.toString(), /--anomalies <kinds>/);
    const version = await sim(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout.toString(), /^\d+\.\d+\.\d+/);
  });

  it('same seed, same stream: two runs write byte-identical frames and labels', async () => {
    const args = (n: number) => [
      ...['--stdout', '--devices', '4', '--rate', '200', '--count', '400', '--seed', '42'],
      ...[
        '--metrics',
        'temperature,vibration,current,humidity',
        '--start-ts',
        '1700000000000',
        '--clock-skew',
        '2s',
      ],
      ...['--anomalies', 'spike,step,drift,stuck,dropout', '--anomaly-rate', '2000', '--malformed', '0.02'],
      ...['--out-of-order', '0.05', '--max-delay', '300ms', '--duplicates', '0.02'],
      ...[
        '--labels',
        join(dir, `labels-${n}.jsonl`),
        '--report',
        join(dir, `report-${n}.json`),
        '--log-level',
        'warn',
      ],
    ];
    const [a, b] = await Promise.all([sim(args(1)), sim(args(2))]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.ok(a.stdout.length > 50_000);
    assert.ok(a.stdout.equals(b.stdout), 'stdout differs between two runs with the same seed');
    const labels = readFileSync(join(dir, 'labels-1.jsonl'), 'utf8');
    assert.equal(labels, readFileSync(join(dir, 'labels-2.jsonl'), 'utf8'));
    const first = JSON.parse(labels.split('\n')[0]!);
    assert.deepEqual(Object.keys(first), ['device', 'metric', 'kind', 'start', 'end']);
    const report = JSON.parse(readFileSync(join(dir, 'report-1.json'), 'utf8'));
    assert.equal(report.framesSent, a.stdout.toString('latin1').split('\n').length - 1);
    const other = await sim(args(3).map((x) => (x === '42' ? '43' : x)));
    assert.ok(!other.stdout.equals(a.stdout));
  });

  it('stops on SIGTERM, exits 0 and reports exactly the frames it wrote', async () => {
    const run = await sim(
      ['--stdout', '--devices', '3', '--rate', '50', '--out-of-order', '0.3', '--log-level', 'warn'],
      (p, out) => {
        waitFor('frames on stdout', () => out().length > 2000).then(() => p.kill('SIGTERM'));
      },
    );
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stderr.trim().split('\n').at(-1)!);
    assert.equal(report.stoppedBy, 'signal');
    assert.equal(report.framesSent, run.stdout.toString().split('\n').length - 1);
    assert.ok(report.heldBackDiscarded > 0);
  });
});
