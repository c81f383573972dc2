// edgeflow-agent command line (SPEC.md section 1): run | check-config | status.
import { closeSync, existsSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { EdgeflowError } from '../shared/errors.ts';
import { createLogger } from '../shared/log.ts';
import { loadAgentConfig } from './load-config.ts';
import { VERSION } from './version.ts';

const EXIT_CONFIG = 2;
const EXIT_FATAL = 1;

/** Why a data dir cannot be written, as an errno code (EROFS, EACCES, ENOSPC...), by trying. */
function probeWritable(dir: string): string {
  const probe = join(dir, `.edgeflow-probe-${process.pid}`);
  try {
    // Create the first missing directory level ourselves: recursive mkdir reports ENOENT on a read-only fs.
    const missing: string[] = [];
    for (let d = dir; !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.unshift(d);
    for (const d of missing) mkdirSync(d);
    closeSync(openSync(probe, 'w'));
    unlinkSync(probe);
    return 'writable, but the outbox database cannot be opened';
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return `${e.code ?? 'error'}: ${e.message}`;
  }
}

function printProblems(problems: string[]): never {
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.exit(EXIT_CONFIG);
}

async function run(opts: { config: string; logLevel: string }): Promise<void> {
  const res = loadAgentConfig(opts.config);
  if (!res.ok) printProblems(res.problems);
  const log = createLogger('edgeflow-agent', opts.logLevel);
  const { Agent } = await import('./runtime/agent.ts');
  const { startHttpServer } = await import('../shared/http.ts');
  const agent = new Agent(res.config, { log, version: VERSION });
  try {
    await agent.start();
  } catch (err) {
    // Not writable data dir (read-only file system, permissions): a clear line and exit 1, no stack
    // trace. Running without an outbox would lose data silently. Under systemd Restart=always this
    // is a restart loop with backoff, bounded by StartLimitBurst (deploy/systemd).
    if (err instanceof EdgeflowError && err.code === 'STORE_WRITE_FAILED') {
      const dir = res.config.agent.dataDir;
      log.fatal({ code: err.code, dataDir: dir }, err.message);
      log.flush?.();
      process.stderr.write(`agent.dataDir: ${dir} is not writable (${probeWritable(dir)})\n`);
      process.exit(EXIT_FATAL);
    }
    throw err;
  }
  const http = await startHttpServer(
    res.config.http.listen,
    {
      '/metrics': async () => ({
        type: agent.metrics.registry.contentType,
        body: await agent.metrics.registry.metrics(),
      }),
      '/healthz': () =>
        agent.healthy()
          ? { type: 'text/plain', body: 'ok\n' }
          : { status: 503, type: 'text/plain', body: 'stopping\n' },
      '/status': () => ({ body: JSON.stringify(agent.status()) }),
    },
    log,
  );
  log.info({ url: http.url }, 'http listening');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    agent
      .stop()
      .then(() => http.close())
      .then(
        () => {
          log.flush?.();
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    const next = loadAgentConfig(opts.config);
    if (!next.ok) {
      log.error(
        { problems: next.problems },
        'reload refused: configuration invalid; keeping the running one',
      );
      return;
    }
    agent.reload(next.config).catch((err: unknown) => log.error({ err }, 'reload failed'));
  });
}

async function fetchStatus(url: string): Promise<Record<string, any>> {
  const res = await fetch(new URL('/status', url), { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return (await res.json()) as Record<string, any>;
}

async function status(opts: { url: string; json?: boolean; interval: string }): Promise<void> {
  let body: Record<string, any>;
  let rates = { readings: 0, summaries: 0, sent: 0, seconds: 0 };
  try {
    // Two samples `--interval` apart give rates without the agent keeping rate state of its own.
    const first = await fetchStatus(opts.url);
    const waitMs = Math.max(0, Number(opts.interval) * 1000);
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    body = waitMs > 0 ? await fetchStatus(opts.url) : first;
    const dt = (body.ts - first.ts) / 1000;
    if (dt > 0) {
      const per = (a: number | undefined, b: number | undefined) => Math.max(0, ((b ?? 0) - (a ?? 0)) / dt);
      rates = {
        readings: per(first.counters?.readingsIn, body.counters?.readingsIn),
        summaries: per(first.counters?.summaries, body.counters?.summaries),
        sent: per(first.uplink?.itemsSent, body.uplink?.itemsSent),
        seconds: dt,
      };
    }
  } catch (err) {
    process.stderr.write(`cannot reach the agent at ${opts.url}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return;
  }
  const up = body.uplink;
  const ob = body.outbox;
  const age = ob.oldestTs ? `${Math.round((body.ts - ob.oldestTs) / 1000)}s` : '-';
  const lines = [
    `agent        ${body.agent} ${body.version}, up ${Math.round((body.ts - body.startedAt) / 1000)}s, clock ${body.clockSynced ? 'synced' : 'NOT synced'}`,
    `uplink       ${up ? (up.connected ? `connected to ${up.url}` : `DOWN${up.lastError ? ` (${up.lastError})` : ''}`) : 'not configured'}${up ? `, ${up.itemsSent ?? 0} items sent, ${up.inFlight ?? 0} in flight` : ''}`,
    `outbox       ${ob.items} items, ${ob.bytes} bytes, oldest ${age}`,
    `readings     ${body.counters.readingsIn} in, ${body.counters.badFrames} bad frames, ${body.counters.late} late forwarded`,
    `windows      ${body.windows?.openWindows ?? 0} open, ${body.counters.summaries} summaries emitted`,
    rates.seconds > 0
      ? `rates        ${rates.readings.toFixed(1)} readings/s, ${rates.summaries.toFixed(1)} summaries/s, ${rates.sent.toFixed(1)} items sent/s (over ${rates.seconds.toFixed(1)}s)`
      : 'rates        - (use --interval > 0)',
  ];
  for (const [name, s] of Object.entries<Record<string, unknown>>(body.sources ?? {})) {
    lines.push(
      `source       ${name} (${s.type}): ${s.state}, ${s.framesIn} frames${s.lastError ? `, last error: ${s.lastError}` : ''}`,
    );
  }
  const atRisk = Object.entries<Record<string, unknown>>(body.sources ?? {})
    .filter(([, s]) => typeof s.atRisk === 'number')
    .map(([name, s]) => `${name} ${s.atRisk}`);
  lines.push(
    `durability   ${body.checkpointFailing ? `CHECKPOINT FAILING (${body.checkpointFailing} in a row)` : 'checkpoints ok'}${body.paused ? ', sources PAUSED (back-pressure)' : ''}, ${body.pendingFrames ?? 0} frames pending${atRisk.length ? `, serial at risk: ${atRisk.join(', ')}` : ''}${body.counters.outboxDropped || body.counters.outboxRejected ? `, outbox dropped ${body.counters.outboxDropped} rejected ${body.counters.outboxRejected}` : ''}`,
  );
  const firing = (body.firing ?? []) as {
    rule: string;
    device: string;
    metric: string;
    severity: string;
    value: number;
  }[];
  lines.push(`alerts       ${firing.length} firing`);
  for (const a of firing)
    lines.push(`  ${a.severity.padEnd(8)} ${a.rule} ${a.device}/${a.metric} value=${a.value}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function buildCli(): Command {
  const program = new Command('edgeflow-agent')
    .description('edgeflow edge analytics agent: sensors → windows and rules → outbox → collector')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  const logLevel = new Option('--log-level <level>', 'log level')
    .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .default('info');
  program
    .command('run', { isDefault: true })
    .description('run the agent (the default when only --config is given)')
    .requiredOption('-c, --config <file>', 'agent YAML configuration')
    .addOption(logLevel)
    .action(run);
  program
    .command('check-config')
    .description('validate a configuration: exit 0 if valid, else exit 2 with one line per problem')
    .requiredOption('-c, --config <file>', 'agent YAML configuration')
    .action((opts: { config: string }) => {
      const res = loadAgentConfig(opts.config);
      if (!res.ok) printProblems(res.problems);
      process.stdout.write(`${opts.config}: ok\n`);
    });
  program
    .command('status')
    .description('ask a running agent for link state, outbox, rates and firing alerts')
    .option('--url <url>', 'the agent HTTP address', 'http://127.0.0.1:9464')
    .option('--json', 'print the raw JSON')
    .option('--interval <seconds>', 'sample twice this far apart to show rates (0: no rates)', '1')
    .action(status);
  return program;
}

const program = buildCli();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_CONFIG);
  throw err;
}
