// Stand-in entry for the single-executable build (issue 6) while agent/main.ts is being written.
// It exercises what makes the binary hard to build: both native addons (better-sqlite3 with WAL,
// @serialport/bindings-cpp reading a tty), a JSON import, YAML, and the CLI shape of SPEC.md section 1.
//
//   smoke --version
//   smoke check-config --config agent.yaml        exit 0, or exit 2 with `<path>: <problem>` lines
//   smoke run --config agent.yaml [--lines N]     opens <agent.dataDir>/smoke.db and the first serial
//                                                 source, prints `ready`, stores N lines (default: until
//                                                 SIGTERM), prints `stored <count>` and exits 0
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ReadlineParser } from '@serialport/parser-readline';
import { SerialPort } from 'serialport';
import { parse } from 'yaml';
import pkg from '../../package.json' with { type: 'json' };
import { openDatabase } from '../../shared/sqlite.ts';

interface SmokeConfig {
  agent: { id: string; dataDir: string };
  source: { path: string; baudRate: number };
}

function checkConfig(file: string): { config?: SmokeConfig; problems: string[] } {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { problems: [`(file): ${(err as Error).message.split('\n')[0]}`] };
  }
  const root = (doc ?? {}) as Record<string, unknown>;
  const agent = (root.agent ?? {}) as Record<string, unknown>;
  if (typeof agent.id !== 'string' || !/^[a-zA-Z0-9._-]{1,64}$/.test(agent.id)) {
    problems.push('agent.id: expected 1-64 characters of [a-zA-Z0-9._-]');
  }
  if (typeof agent.dataDir !== 'string' || agent.dataDir === '')
    problems.push('agent.dataDir: expected a directory path');
  const sources = Array.isArray(root.sources) ? (root.sources as Record<string, unknown>[]) : [];
  const serial = sources.find((s) => s?.type === 'serial');
  if (!serial || typeof serial.path !== 'string')
    problems.push('sources: expected a source with type: serial and a path');
  if (problems.length > 0) return { problems };
  return {
    problems,
    config: {
      agent: { id: agent.id as string, dataDir: agent.dataDir as string },
      source: {
        path: serial?.path as string,
        baudRate: typeof serial?.baudRate === 'number' ? serial.baudRate : 115200,
      },
    },
  };
}

async function run(config: SmokeConfig, maxLines: number): Promise<void> {
  const db = openDatabase(join(config.agent.dataDir, 'smoke.db'));
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS frames (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, line TEXT NOT NULL)',
  );
  const insert = db.prepare('INSERT INTO frames (ts, line) VALUES (?, ?)');
  const port = new SerialPort({ path: config.source.path, baudRate: config.source.baudRate });
  await new Promise<void>((resolve, reject) => {
    port.once('open', resolve);
    port.once('error', reject);
  });
  const lines = port.pipe(new ReadlineParser({ delimiter: '\n' }));
  let stored = 0;
  const done = new Promise<void>((resolve) => {
    lines.on('data', (line: string) => {
      insert.run(Date.now(), line.trim());
      stored += 1;
      if (stored >= maxLines) resolve();
    });
    process.once('SIGTERM', () => resolve());
  });
  process.stdout.write(`ready journal_mode=${db.pragma('journal_mode', { simple: true })}\n`);
  await done;
  await new Promise<void>((resolve) => port.close(() => resolve()));
  const row = db.prepare('SELECT count(*) AS n FROM frames').get() as { n: number };
  db.close();
  process.stdout.write(`stored ${stored} total ${row.n}\n`);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      version: { type: 'boolean' },
      help: { type: 'boolean' },
      config: { type: 'string' },
      lines: { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  if (values.version) {
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'run';
  if (values.help || !values.config) {
    process.stdout.write('usage: edgeflow-agent [run|check-config] --config FILE [--lines N] | --version\n');
    return values.help ? 0 : 2;
  }
  const { config, problems } = checkConfig(values.config);
  if (!config) {
    for (const p of problems) process.stderr.write(`${p}\n`);
    return 2;
  }
  if (command === 'check-config') return 0;
  if (command !== 'run') {
    process.stderr.write(`unknown command ${command}\n`);
    return 2;
  }
  await run(config, values.lines ? Number(values.lines) : Number.POSITIVE_INFINITY);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1;
  },
);
