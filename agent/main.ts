// edgeflow-agent command line (SPEC.md section 1): run | check-config | status.
import { closeSync, existsSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import type { ConfigResult } from '../shared/config-file.ts';
import { addAgent } from '../shared/credentials.ts';
import { EdgeflowError } from '../shared/errors.ts';
import { createLogger } from '../shared/log.ts';
import type { AgentConfig } from './config.ts';
import { checkConfigFiles } from './config-files.ts';
import { readRawConfig } from './fleet/validate.ts';
import { loadAgentConfig } from './load-config.ts';
import { setAfterStartV8Flags } from './v8-flags.ts';
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

/** The config with the files it points at checked (config-files.ts), or every problem. */
function loadChecked(path: string, schemaOnly = false): ConfigResult<AgentConfig> {
  const res = loadAgentConfig(path);
  if (!res.ok || schemaOnly) return res;
  const problems = checkConfigFiles(res.config);
  return problems.length > 0 ? { ok: false, problems } : res;
}

async function run(opts: { config?: string; logLevel: string }, cmd: Command): Promise<void> {
  const configPath = requireConfig(opts, cmd);
  const res = loadChecked(configPath);
  if (!res.ok) printProblems(res.problems);
  const log = createLogger('edgeflow-agent', opts.logLevel);
  const { Agent } = await import('./runtime/agent.ts');
  const { startHttpServer } = await import('../shared/http.ts');
  // Fleet control (issue 15, agent/fleet/): picks the configuration to start with (last-known-good,
  // or the old one after a crash on a pushed one) and hooks the downlink before the first connect.
  const fleet = res.config.fleet
    ? (await import('./fleet/open.ts')).openFleet(configPath, res.config, log)
    : null;
  const startConfig = fleet ? fleet.startConfig : res.config;
  // Over-the-air updates (issue 16): finish an interrupted swap before the agent opens the data dir. The
  // wanted release comes from the effective config, so a fleet document's `update.version` counts.
  let restartFor: (code: number, why: string) => void = (code) => process.exit(code);
  const upd = await import('./update/updater.ts');
  const updateConfig =
    startConfig.update ??
    (upd.defaultBinary() ? (await import('./update/config.ts')).localOnlyUpdateConfig() : undefined);
  const updater = updateConfig
    ? new upd.Updater(updateConfig, {
        log: log.child({ component: 'update' }),
        version: VERSION,
        dataDir: res.config.agent.dataDir,
        uplink: startConfig.uplink,
        health: (): { ok: boolean; missing: string[] } => upd.healthOf(agent.health()),
        restart: (code, why) => restartFor(code, why),
      })
    : null;
  if (updater && !updater.boot()) return;
  const agent = new Agent(startConfig, {
    log,
    version: VERSION,
    updateReport: updater ? () => updater.status() : undefined,
  });
  if (fleet) {
    const host = (await import('./fleet/agent-host.ts')).agentHost(agent, res.config.agent.id);
    // Every config fleet control applies (a document, a rollback, a SIGHUP merged with the document)
    // goes to the updater too: a document may carry the wanted release (`update.version`, issue 16).
    fleet.attach({
      ...host,
      reload: async (cfg) => {
        await host.reload(cfg);
        updater?.reload(cfg.update);
      },
    });
  }
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
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    http = await startHttpServer(
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
  } catch (err) {
    // A port in use (or not allowed): one line and exit 1 (issue 12 item 3), after the agent has stopped
    // cleanly (its checkpoint is written; nothing it accepted is lost).
    const e = err as NodeJS.ErrnoException;
    await agent.stop().catch(() => {});
    log.flush?.();
    process.stderr.write(
      `http.listen: ${res.config.http.listen}: ${e.code === 'EADDRINUSE' ? 'address in use' : 'cannot listen'} (${e.code ?? e.message})\n`,
    );
    process.exit(EXIT_FATAL);
  }
  log.info({ url: http.url }, 'http listening');
  // After /healthz answers, not at exec: such a flag at exec costs ~25 ms of start (v8-flags.ts).
  setAfterStartV8Flags();
  fleet?.start();

  let stopping = false;
  const shutdown = (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    fleet?.stop();
    updater?.stop();
    agent
      .stop()
      .then(() => http.close())
      .then(
        () => {
          log.flush?.();
          process.exit(code);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  // Exit 75 after a swap or a rollback: the service manager starts the binary now at update.binary.
  restartFor = (code, why) => shutdown(`update: ${why}`, code);
  updater?.start();
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    // A config that does not parse (a YAML alias bomb included, issue 12 item 2) or points at unusable
    // files is refused in one log line; the running configuration stays.
    const next = loadChecked(configPath);
    if (!next.ok) {
      log.error(
        { problems: next.problems.slice(0, 20) },
        'reload refused: configuration invalid; keeping the running one',
      );
      return;
    }
    // With fleet control, the running document stays merged over the edited file (agent/fleet/), and the
    // updater hears of the result through the fleet host above.
    if (fleet)
      fleet
        .localReloaded(readRawConfig(configPath), next.config)
        .catch((err: unknown) => log.error({ err }, 'reload failed'));
    else {
      agent.reload(next.config).catch((err: unknown) => log.error({ err }, 'reload failed'));
      updater?.reload(next.config.update);
    }
  });
}

async function fetchStatus(url: string): Promise<Record<string, any>> {
  const res = await fetch(new URL('/status', url), { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body: unknown = await res.json();
  // Another program's /status (the collector's, issue 12 item 4) is a clear error, not a TypeError.
  const shape = agentStatusShape.safeParse(body);
  if (!shape.success)
    throw new Error(
      'the answer is not an edgeflow agent status (no agent/outbox/counters): is it the collector?',
    );
  return shape.data;
}

/** The fields `status` prints from; the rest of the agent's /status is read leniently. */
const agentStatusShape = z
  .object({
    agent: z.string(),
    ts: z.number(),
    startedAt: z.number(),
    outbox: z.object({ items: z.number(), bytes: z.number() }).passthrough(),
    counters: z.object({ readingsIn: z.number() }).passthrough(),
  })
  .passthrough();

/** `--interval`: seconds, a number from 0 to 3600 (issue 12 item 4: `abc` was taken as 0 rates). */
function parseInterval(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 3600)
    throw new InvalidArgumentError('expected a number of seconds from 0 to 3600');
  return n;
}

async function status(opts: { url: string; json?: boolean; interval: number }): Promise<void> {
  let body: Record<string, any>;
  let rates = { readings: 0, summaries: 0, sent: 0, seconds: 0 };
  try {
    // Two samples `--interval` apart give rates without the agent keeping rate state of its own.
    const first = await fetchStatus(opts.url);
    const waitMs = opts.interval * 1000;
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
  const fleet = body.fleet as
    | {
        version: number;
        state: string;
        rollout?: string;
        reason?: string;
        lastKnownGood?: { version: number };
      }
    | undefined;
  if (fleet) {
    // Issue 15: what the collector asked for, and what the agent runs.
    lines.push(
      `fleet        version ${fleet.version} ${fleet.state}${fleet.rollout ? ` (rollout ${fleet.rollout})` : ''}, running last-known-good ${fleet.lastKnownGood?.version ?? 0}${fleet.reason ? `: ${fleet.reason}` : ''}`,
    );
  }
  lines.push(`alerts       ${firing.length} firing`);
  for (const a of firing)
    lines.push(`  ${a.severity.padEnd(8)} ${a.rule} ${a.device}/${a.metric} value=${a.value}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** SPEC.md section 1: every command takes `--log-level`. */
const logLevelOption = () =>
  new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info');

/**
 * `--config` is checked here, not with commander's requiredOption: commander reports a missing required
 * option before an unknown one, so `edgeflow-agent --frobnicate` said "required option '--config'"
 * (issue 12 item 4).
 */
function requireConfig(opts: { config?: string }, cmd: Command): string {
  if (opts.config === undefined)
    return cmd.error("error: required option '-c, --config <file>' not specified");
  return opts.config;
}

export function buildCli(): Command {
  const program = new Command('edgeflow-agent')
    .description('edgeflow edge analytics agent: sensors → windows and rules → outbox → collector')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  program
    .command('run', { isDefault: true })
    .description('run the agent (the default when only --config is given)')
    .option('-c, --config <file>', 'agent YAML configuration (required)')
    .addOption(logLevelOption())
    .action(run);
  program
    .command('check-config')
    .description(
      'validate a configuration and the files it names: exit 0 if valid, else exit 2 with one line per problem',
    )
    .option('-c, --config <file>', 'agent YAML configuration (required)')
    .option(
      '--schema-only',
      'check the configuration alone, not the files it names (a config for another machine)',
    )
    .addOption(logLevelOption())
    .action((opts: { config?: string; schemaOnly?: boolean }, cmd: Command) => {
      const path = requireConfig(opts, cmd);
      const res = loadChecked(path, opts.schemaOnly);
      if (!res.ok) printProblems(res.problems);
      process.stdout.write(`${path}: ok\n`);
    });
  program
    .command('status')
    .description('ask a running agent for link state, outbox, rates and firing alerts')
    .option('--url <url>', 'the agent HTTP address', 'http://127.0.0.1:9464')
    .option('--json', 'print the raw JSON')
    .option(
      '--interval <seconds>',
      'sample twice this far apart to show rates (0: no rates)',
      parseInterval,
      1,
    )
    .addOption(logLevelOption())
    .action(status);
  program
    .command('add-sensor')
    .description(
      "create a sensor's credential for an embedded broker source (`credentials:`): prints the secret once, stores only a salted hash",
    )
    .argument('<sensorId>', 'the sensor id: its MQTT username, and the {device} it may publish as')
    .requiredOption('--credentials <file>', 'the sensor credentials file (created if missing)')
    .addOption(logLevelOption())
    .action(async (sensorId: string, opts: { credentials: string }) => {
      try {
        const { secret, replaced } = await addAgent(opts.credentials, sensorId);
        process.stderr.write(
          `${replaced ? 'replaced' : 'added'} sensor ${sensorId} in ${opts.credentials}\n`,
        );
        process.stdout.write(`${secret}\n`);
      } catch (err) {
        if (!(err instanceof EdgeflowError)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exit(EXIT_CONFIG);
      }
    });
  program
    .command('install-release')
    .description(
      'install a signed release from files: verify the manifest against the public key and the executable beside it, keep the current one as fallback, swap (docs/updates.md)',
    )
    .requiredOption('--manifest <file>', 'the release manifest (<executable>.manifest.json)')
    .requiredOption('--public-key <file>', 'the release public key (PEM)')
    .option('--binary <file>', 'the installed executable to replace (default: this executable)')
    .addOption(logLevelOption())
    .action(async (opts: { manifest: string; publicKey: string; binary?: string }) => {
      const { installRelease } = await import('./update/cli.ts');
      const r = await installRelease({ ...opts, running: VERSION });
      if (!r.ok) {
        process.stderr.write(`${r.problem}\n`);
        process.exit(EXIT_CONFIG);
      }
      process.stdout.write(`${r.message}\n`);
    });
  return program;
}

/** The first word names a command, or is an option (then `run` is meant): else it is an unknown command. */
function unknownCommand(program: Command, argv: readonly string[]): string | null {
  const first = argv[2];
  if (first === undefined || first.startsWith('-')) return null;
  const known = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
  return known.includes(first) || first === 'help' ? null : first;
}

/** Runs the command line: at start, or (x64 executable) when the V8 startup snapshot is deserialised. */
function main(): void {
  const program = buildCli();
  const unknown = unknownCommand(program, process.argv);
  if (unknown !== null) {
    process.stderr.write(
      `error: unknown command '${unknown}' (commands: ${program.commands.map((c) => c.name()).join(', ')})\n`,
    );
    process.exit(EXIT_CONFIG);
  }
  // No top-level await: another entry can import this module (test/update/unhealthy-entry.ts builds a
  // release that way), and esbuild cannot bundle a non-entry module with top-level await as CommonJS.
  program.parseAsync(process.argv).catch((err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_CONFIG);
    throw err;
  });
}

/**
 * The modules `run` imports when it starts (above), evaluated while the snapshot is built instead: their
 * top levels create no handles and read no environment (docs/design/binaries.md "Startup snapshot").
 */
async function preloadForSnapshot(): Promise<void> {
  await Promise.all([
    import('./runtime/agent.ts'),
    import('../shared/http.ts'),
    import('./fleet/open.ts'),
    import('./fleet/agent-host.ts'),
    import('./update/updater.ts'),
    import('./update/config.ts'),
  ]);
}

// An executable built with `--snapshot` (scripts/build-binaries.mjs, issue 14; x64 only) carries a V8
// startup snapshot: the build runs this bundle once and saves the heap, modules evaluated; each start
// deserialises it and calls main(), which reads argv and the environment then. Everywhere else (tsx, the
// default build, arm64) main() runs now. The build defines __EDGEFLOW_SNAPSHOT__ so that those never load
// node:v8 for the check (+0.5 MiB idle, measured).
declare const __EDGEFLOW_SNAPSHOT__: boolean | undefined;
const snapshot =
  typeof __EDGEFLOW_SNAPSHOT__ === 'boolean' && __EDGEFLOW_SNAPSHOT__
    ? (process.getBuiltinModule('node:v8') as typeof import('node:v8')).startupSnapshot
    : undefined;
if (snapshot?.isBuildingSnapshot()) {
  snapshot.setDeserializeMainFunction(main);
  preloadForSnapshot().catch((err: unknown) => {
    process.stderr.write(`startup snapshot: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
} else main();
