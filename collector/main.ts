// edgeflow-collector command line (SPEC.md section 1): run | add-agent | check-config.
// Bad config: one `path: message` line per problem on stderr, exit 2. Logs: JSON lines on stderr.
import { Command, CommanderError, Option } from 'commander';
import { loadConfigFile } from '../shared/config-file.ts';
import { EdgeflowError } from '../shared/errors.ts';
import { createLogger } from '../shared/log.ts';
import type { ReleaseArch } from '../shared/release.ts';
import { AGENT_ID_RULE } from '../shared/topics.ts';
import { collectorConfigSchema } from './config.ts';
import type { FleetCliOptions } from './fleet/cli.ts';
import { serve } from './serve.ts';
import { VERSION } from './version.ts';

const EXIT_CONFIG = 2;

function printProblems(problems: string[]): never {
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.exit(EXIT_CONFIG);
}

async function run(opts: { config: string; logLevel: string }): Promise<void> {
  const res = loadConfigFile(opts.config, collectorConfigSchema);
  if (!res.ok) printProblems(res.problems);
  const log = createLogger('edgeflow-collector', opts.logLevel);
  if (res.config.collector.mode === 'cluster') {
    const { runIngestNode } = await import('./cluster/cli.ts');
    return runIngestNode(Object.freeze(res.config), log, VERSION);
  }
  const { buildCollector } = await import('./collector.ts');
  const collector = buildCollector(Object.freeze(res.config), { log, version: VERSION });
  await serve('collector', collector, log);
}

async function addAgentCmd(agentId: string, opts: { credentials?: string; config?: string }): Promise<void> {
  let path = opts.credentials;
  if (!path && opts.config) {
    const res = loadConfigFile(opts.config, collectorConfigSchema);
    if (!res.ok) printProblems(res.problems);
    path = res.config.mqtt.credentials;
  }
  if (!path) {
    process.stderr.write('add-agent: give --credentials FILE (or --config collector.yaml)\n');
    process.exit(EXIT_CONFIG);
  }
  const { addAgent } = await import('../shared/credentials.ts');
  try {
    const { secret, replaced } = await addAgent(path, agentId);
    process.stderr.write(
      `${replaced ? 'replaced' : 'added'} agent ${agentId} in ${path}; the secret is shown once:\n`,
    );
    process.stdout.write(`${secret}\n`);
  } catch (err) {
    process.stderr.write(`add-agent: ${(err as Error).message}\n`);
    process.exit(err instanceof EdgeflowError && err.code.startsWith('CONFIG') ? EXIT_CONFIG : 1);
  }
}

export function buildCli(): Command {
  const program = new Command('edgeflow-collector')
    .description('edgeflow collector: MQTT broker for agents → spool → Kafka and InfluxDB')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  const logLevel = () =>
    new Option('--log-level <level>', 'log level')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info');
  program
    .command('run', { isDefault: true })
    .description('run the collector (the default when only --config is given)')
    .requiredOption('-c, --config <file>', 'collector YAML configuration')
    .addOption(logLevel())
    .action(run);
  program
    .command('add-agent')
    .description(
      'create (or replace) an agent credential; prints the secret once, stores only a salted scrypt hash',
    )
    .argument('<agentId>', `agent id (${AGENT_ID_RULE})`)
    .option('--credentials <file>', 'credentials JSON file (mqtt.credentials of the collector config)')
    .option('-c, --config <file>', 'take the credentials path from this collector config')
    .addOption(logLevel())
    .action(addAgentCmd);
  program
    .command('forward')
    .description(
      'cluster mode: forward the ingest topic to Kafka (exactly once) or InfluxDB (docs/cluster.md)',
    )
    .requiredOption('-c, --config <file>', 'collector YAML configuration (kafka, cluster, influx)')
    .addOption(new Option('--to <target>', 'where to forward').choices(['kafka', 'influx']).default('kafka'))
    .option('--http <host:port>', 'HTTP listen address (overrides http.listen; port 0 = any)')
    .addOption(logLevel())
    .action(async (opts: { config: string; to: 'kafka' | 'influx'; http?: string; logLevel: string }) => {
      const res = loadConfigFile(opts.config, collectorConfigSchema);
      if (!res.ok) printProblems(res.problems);
      const log = createLogger('edgeflow-collector', opts.logLevel);
      const { runForwarder } = await import('./cluster/cli.ts');
      await runForwarder(Object.freeze(res.config), opts, log, VERSION);
    });
  // Issue 15: fleet control, a client of the running collector's fleet routes (collector/fleet/cli.ts).
  const fleet = program
    .command('fleet')
    .description('fleet control: roll desired configuration out to agents (docs/fleet.md)');
  const fleetActions = {
    apply: 'validate the fleet directory and start a rollout of what changed (canary first)',
    diff: 'show which agents an apply would change, and which keys',
    status: 'the current rollout and agents per version and state',
    rollback: 'send every agent of the current rollout the config it had before (a new version)',
    resume: 'continue a halted rollout with its next stage',
  } as const;
  for (const [name, description] of Object.entries(fleetActions)) {
    fleet
      .command(name)
      .description(description)
      .option('-c, --config <file>', 'collector YAML configuration (http.listen, fleet.adminTokenFile)')
      .option('--url <url>', 'collector HTTP address, e.g. http://127.0.0.1:9465 (overrides the config)')
      .option('--token-file <file>', 'admin token file (overrides fleet.adminTokenFile)')
      .option(
        '--ca <file>',
        "CA (PEM) of the collector's HTTPS certificate (http.tls); default: the system's",
      )
      .option('--json', "print the collector's JSON answer")
      .action(async (opts: FleetCliOptions) => {
        const { fleetCommand } = await import('./fleet/cli.ts');
        const code = await fleetCommand(name as keyof typeof fleetActions, opts, {
          stdout: (s) => process.stdout.write(s),
          stderr: (s) => process.stderr.write(s),
        });
        process.exitCode = code;
      });
  }
  fleet
    .command('check')
    .description(
      'validate a fleet directory offline (no collector needed): exit 0, or 2 with one line per problem',
    )
    .option('-c, --config <file>', 'collector YAML configuration (fleet.dir, credentials, saved labels)')
    .option('--dir <dir>', 'fleet directory (overrides fleet.dir)')
    .option(
      '--agents <ids>',
      'comma-separated agent ids to check the merged configs of (besides the credentials)',
    )
    .action(async (opts: { config?: string; dir?: string; agents?: string }) => {
      const { fleetCheck } = await import('./fleet/cli.ts');
      process.exitCode = fleetCheck(opts, {
        stdout: (s) => process.stdout.write(s),
        stderr: (s) => process.stderr.write(s),
      });
    });
  // Issue 16: release signing for over-the-air agent updates (docs/updates.md), as the build's --sign-key.
  fleet
    .command('keygen')
    .description(
      'write a release key pair: DIR/release.key (private, 0600; keep offline) and DIR/release.pub',
    )
    .requiredOption('--out <dir>', 'directory for the key pair (release.key is never overwritten)')
    .action(async (opts: { out: string }) => {
      const { writeReleaseKeyPair } = await import('./artifacts/sign.ts');
      const k = await oneLineErrors('fleet keygen', () => writeReleaseKeyPair(opts.out));
      process.stdout.write(
        `${k.privateFile} (private, keep offline)\n${k.publicFile} (pin on agents: update.publicKeyFile), key id ${k.keyId}\n`,
      );
    });
  fleet
    .command('sign')
    .description(
      'sign agent executables: writes <binary>.manifest.json beside each (version, arch, size, sha256)',
    )
    .requiredOption('--key <file>', 'the release private key (PEM)')
    .requiredOption('--release-version <version>', 'the version agents will ask for (update.version)')
    .option('--arch <arch>', 'x64 or arm64 (default: from the ELF header)')
    .argument('<binary...>', 'agent executables')
    .action(async (binaries: string[], opts: { key: string; releaseVersion: string; arch?: ReleaseArch }) => {
      const { signBinaries } = await import('./artifacts/sign.ts');
      const lines = await oneLineErrors('fleet sign', () =>
        signBinaries(opts.key, opts.releaseVersion, binaries, opts.arch),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  program
    .command('check-config')
    .description('validate a configuration: exit 0 if valid, else exit 2 with one line per problem')
    .requiredOption('-c, --config <file>', 'collector YAML configuration')
    .addOption(logLevel())
    .action((opts: { config: string }) => {
      const res = loadConfigFile(opts.config, collectorConfigSchema);
      if (!res.ok) printProblems(res.problems);
      process.stdout.write(`${opts.config}: ok\n`);
    });
  return program;
}

/** Bad input to a local command (a file that is not an executable, a key that exists): one line, exit 2. */
async function oneLineErrors<T>(what: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EEXIST'
        ? `${e.path} exists; not overwritten`
        : e.code && e.path
          ? `${e.path}: ${e.code}`
          : e.message;
    process.stderr.write(`${what}: ${why}\n`);
    process.exit(EXIT_CONFIG);
  }
}

const program = buildCli();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_CONFIG);
  throw err;
}
