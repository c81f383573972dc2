// `edgeflow-sim fleet-agents`: the simulated fleet agents (fleet-agents.ts) as a process of their own,
// for scale runs beside real agents (issue 15). Prints one ready line on stdout once every agent is
// connected and subscribed, and on SIGTERM/SIGINT one JSON report (counters, agents per applied version).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { readSecretFile } from '../shared/config-file.ts';
import { parsePublicKey } from '../shared/fleet.ts';
import { SimFleetAgents } from './fleet-agents.ts';

export async function runFleetAgents(argv: readonly string[]): Promise<number> {
  const program = new Command('edgeflow-sim fleet-agents')
    .description('N lightweight agents speaking the fleet downlink/status contract (verify, check, report)')
    .requiredOption('--url <url>', "the collector's MQTT listener, e.g. mqtt://127.0.0.1:1883")
    .requiredOption('--public-key <file>', "the collector's fleet signing public key (SPKI PEM), pinned")
    .requiredOption('--secret-file <file>', 'the one MQTT secret every simulated agent id logs in with')
    .option('--prefix <prefix>', 'agent ids are <prefix><0000..>', 'sim-')
    .option('--count <n>', 'number of agents', '1000')
    .option('--labels <k=v,...>', 'labels every agent reports', '')
    .option('--concurrency <n>', 'connections opened at once while starting', '50')
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = program.opts<{
    url: string;
    publicKey: string;
    secretFile: string;
    prefix: string;
    count: string;
    labels: string;
    concurrency: string;
  }>();
  const count = Number(o.count);
  if (!Number.isInteger(count) || count < 1 || count > 100_000) {
    process.stderr.write('--count: expected an integer 1-100000\n');
    return 2;
  }
  const width = Math.max(4, String(count - 1).length);
  const ids = Array.from({ length: count }, (_, i) => `${o.prefix}${String(i).padStart(width, '0')}`);
  const labels = Object.fromEntries(
    o.labels
      .split(',')
      .filter(Boolean)
      .map((kv) => kv.split('=', 2) as [string, string]),
  );
  const sims = new SimFleetAgents({
    url: o.url,
    ids,
    secret: readSecretFile(o.secretFile),
    publicKey: parsePublicKey(readFileSync(o.publicKey)),
    labels: () => labels,
    connectConcurrency: Number(o.concurrency),
  });
  const t0 = performance.now();
  await sims.start();
  process.stdout.write(
    `${JSON.stringify({ ready: true, agents: count, connectMs: Math.round(performance.now() - t0) })}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  const versions: Record<string, number> = {};
  for (const id of ids) {
    const v = String(sims.state(id).applied.version);
    versions[v] = (versions[v] ?? 0) + 1;
  }
  await sims.stop();
  process.stdout.write(`${JSON.stringify({ counters: sims.counters, appliedVersions: versions })}\n`);
  return 0;
}
