// edgeflow-sim entry point: parse the command line, build the fleet and its output, run until the
// count/duration is reached or SIGINT/SIGTERM, then print one JSON report (stdout, or --report FILE;
// with --stdout frames and no --report, on stderr so the frame stream stays clean).
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { systemClock } from '../shared/clock.ts';
import { readSecretFile } from '../shared/config-file.ts';
import { createLogger, type Logger } from '../shared/log.ts';
import type { Label } from './anomalies.ts';
import { CommanderError, parseArgs, type SimConfig } from './cli.ts';
import { Fleet } from './fleet.ts';
import { MqttOutput } from './outputs/mqtt.ts';
import type { Output } from './outputs/output.ts';
import { SerialOutput } from './outputs/serial.ts';
import { StreamOutput } from './outputs/stdout.ts';
import type { Report } from './report.ts';
import { Runner } from './runner.ts';

function buildOutput(c: SimConfig, log: Logger): Output {
  const o = c.output;
  switch (o.kind) {
    case 'serial':
      return new SerialOutput(o.paths, o.baudRate, log);
    case 'mqtt':
      return new MqttOutput(
        {
          url: o.url,
          topicPattern: o.topicPattern,
          qos: o.qos,
          maxInFlight: o.maxInFlight,
          ...(o.username !== null ? { username: o.username } : {}),
          ...(o.passwordFile !== null ? { password: readSecretFile(o.passwordFile) } : {}),
        },
        log,
      );
    case 'stdout':
      return new StreamOutput(process.stdout);
  }
}

/** Labels are rare (a few per device-hour): appended synchronously, in generation order. */
function labelWriter(path: string | null): { onLabel?: (l: Label) => void; close(): void } {
  if (path === null) return { close() {} };
  const fd = openSync(path, 'w');
  return {
    onLabel: (l) => writeSync(fd, `${JSON.stringify(l)}\n`),
    close: () => closeSync(fd),
  };
}

export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return 0;
      process.stderr.write(`edgeflow-sim: ${e.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    throw e;
  }
  if (!parsed.ok) {
    for (const p of parsed.problems) process.stderr.write(`${p}\n`);
    return 2;
  }
  const c = parsed.config;
  const log = createLogger('edgeflow-sim', c.logLevel);
  if (c.rateHz > 1000) {
    log.warn(
      { rateHz: c.rateHz },
      'more than 1000 ticks/s per device: millisecond timestamps repeat within a device',
    );
  }
  const labels = labelWriter(c.labels);
  const fleet = new Fleet({
    seed: c.seed,
    devices: c.devices,
    metrics: c.metrics,
    rateHz: c.rateHz,
    startTs: c.startTs,
    format: c.format,
    group: c.group,
    anomalies: c.anomalies,
    anomalyRate: c.anomalyRate,
    malformed: c.malformed,
    outOfOrder: c.outOfOrder,
    maxDelayMs: c.maxDelayMs,
    duplicates: c.duplicates,
    clockSkewMs: c.clockSkewMs,
    ...(labels.onLabel ? { onLabel: labels.onLabel } : {}),
  });
  let output: Output;
  try {
    output = buildOutput(c, log);
  } catch (e) {
    labels.close();
    process.stderr.write(`--mqtt-password-file: cannot read (${(e as NodeJS.ErrnoException).code ?? e})\n`);
    return 2;
  }
  const runner = new Runner(fleet, output, {
    ticks: c.ticks,
    endKind: c.endKind,
    readingsPerTick: c.devices.length * c.metrics.length,
    clock: systemClock,
  });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130); // a second signal: give up on draining
    log.info({ signal: sig }, 'stopping: held-back frames are dropped, pending writes are confirmed');
    runner.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  log.info(
    {
      devices: c.devices.length,
      metrics: c.metrics,
      rateHz: c.rateHz,
      ticks: c.ticks,
      output: c.output.kind,
      format: c.format,
      seed: c.seed,
      startTs: c.startTs,
      skews: c.clockSkewMs > 0 ? fleet.skews : undefined,
    },
    'simulation starting',
  );
  let report: Report;
  try {
    report = await runner.run();
  } catch (err) {
    log.error({ err }, 'simulation failed');
    return 1;
  } finally {
    labels.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  log.info(
    {
      targetRateHz: report.targetRateHz,
      achievedRateHz: report.achievedRateHz,
      achievedFrameRateHz: report.achievedFrameRateHz,
      maxLagMs: report.maxLagMs,
      readingsSent: report.readingsSent,
      framesSent: report.framesSent,
    },
    'simulation finished',
  );
  const text = `${JSON.stringify(report)}\n`;
  if (c.report !== null) writeFileSync(c.report, text);
  else if (c.output.kind === 'stdout') process.stderr.write(text);
  else process.stdout.write(text);
  return 0;
}

// Issue 15: `edgeflow-sim fleet-agents ...` runs the simulated fleet agents instead of sensors.
if (process.argv[2] === 'fleet-agents') {
  const { runFleetAgents } = await import('./fleet-agents-main.ts');
  process.exitCode = await runFleetAgents(process.argv.slice(3));
} else {
  process.exitCode = await main(process.argv.slice(2));
}
