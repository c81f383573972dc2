// Command line of edgeflow-sim (SPEC.md sections 1 and 6). Parsing is pure: `parseArgs` returns the
// validated configuration or every problem found (`--flag: what is wrong`); main.ts prints and exits 2.
import { Command, CommanderError, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { parseDuration } from '../shared/units.ts';
import { ANOMALY_KINDS, type AnomalyKind } from './anomalies.ts';
import { FORMATS, type Format, GROUPABLE } from './formats.ts';
import { DEFAULT_MAX_IN_FLIGHT } from './outputs/mqtt.ts';
import { isMetric, METRICS, type Metric } from './signals.ts';

export type OutputConfig =
  | { kind: 'serial'; paths: string[]; baudRate: number }
  | {
      kind: 'mqtt';
      url: string;
      topicPattern: string;
      qos: 0 | 1;
      maxInFlight: number;
      username: string | null;
      passwordFile: string | null;
    }
  | { kind: 'stdout' };

export interface SimConfig {
  devices: string[];
  metrics: Metric[];
  rateHz: number;
  seed: string;
  /** Ticks to run, or null to run until SIGINT/SIGTERM. */
  ticks: number | null;
  endKind: 'count' | 'duration';
  output: OutputConfig;
  format: Format;
  group: boolean;
  anomalies: AnomalyKind[];
  anomalyRate: number;
  malformed: number;
  outOfOrder: number;
  maxDelayMs: number;
  duplicates: number;
  clockSkewMs: number;
  labels: string | null;
  report: string | null;
  startTs: number;
  logLevel: string;
}

export type ParseResult = { ok: true; config: SimConfig } | { ok: false; problems: string[] };

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Repeatable and comma-separated: `--serial a --serial b,c` gives [a, b, c]. */
function list(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ];
}

export function buildProgram(): Command {
  return new Command('edgeflow-sim')
    .description('Simulated sensor firmware: devices writing frames to serial ttys, MQTT or stdout')
    .version(pkg.version, '--version')
    .helpOption('-h, --help')
    .allowExcessArguments(false)
    .option('--devices <n>', 'number of simulated devices', '1')
    .option('--rate <hz>', 'sample ticks per second per device; each tick samples every metric', '1')
    .option('--metrics <list>', `comma list of ${METRICS.join(', ')}`, 'temperature')
    .option('--seed <s>', 'random seed: the same seed (and --start-ts) gives the same stream', '1')
    .option('--duration <d>', 'run for this long (e.g. 30s, 5m): duration x rate ticks')
    .option('--count <n>', 'run this many ticks (samples per device and metric)')
    .option(
      '--serial <paths>',
      'serial port(s), repeatable or comma list; devices are spread over them',
      list,
    )
    .option('--baud-rate <n>', 'serial baud rate', '115200')
    .option('--mqtt <url>', 'MQTT broker URL, e.g. mqtt://127.0.0.1:1883')
    .option('--topic-pattern <p>', 'MQTT topic with {device} and {metric}', 'plant/{device}/{metric}')
    .addOption(new Option('--qos <n>', 'MQTT QoS').choices(['0', '1']).default('1'))
    .option(
      '--mqtt-max-in-flight <n>',
      'QoS 1 publishes awaiting their PUBACK before the sim waits (firmware often allows few)',
      String(DEFAULT_MAX_IN_FLIGHT),
    )
    .option('--mqtt-username <name>', 'MQTT username')
    .option('--mqtt-password-file <file>', 'file holding the MQTT password')
    .option('--stdout', 'write frames as lines to stdout (the report then goes to --report or stderr)')
    .addOption(
      new Option('--format <f>', 'frame format (SPEC.md section 2)').choices(FORMATS).default('json'),
    )
    .option('--group', 'one frame per device and tick with all metrics (json, kv, senml)')
    .option('--anomalies <kinds>', `comma list of ${ANOMALY_KINDS.join(', ')}`)
    .option('--anomaly-rate <n>', 'expected anomaly episodes per device and hour of event time', '10')
    .option('--malformed <p>', 'probability that a frame is malformed', '0')
    .option('--out-of-order <p>', 'probability that a frame is held back and sent late', '0')
    .option('--max-delay <d>', 'longest hold-back of a late frame', '3s')
    .option('--duplicates <p>', 'probability that a frame is sent twice', '0')
    .option('--clock-skew <d>', 'each device gets a fixed clock offset drawn within +-skew', '0ms')
    .option('--labels <file>', 'write ground-truth anomaly intervals as JSON lines')
    .option('--report <file>', 'write the final report there instead of stdout')
    .option('--start-ts <ts>', 'event-time origin: epoch ms or ISO 8601 (default: now)')
    .option('--device-prefix <p>', 'device name prefix', 'dev-')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'));
}

/**
 * Parses `argv` (without node and script). Throws CommanderError for --help, --version and unknown or
 * malformed flags (commander's own messages); returns every semantic problem otherwise.
 */
export function parseArgs(argv: readonly string[], now = Date.now()): ParseResult {
  const program = buildProgram().exitOverride();
  program.configureOutput({ writeErr: () => {}, writeOut: (s) => process.stdout.write(s) });
  program.parse([...argv], { from: 'user' });
  const o = program.opts<Record<string, string | string[] | boolean | undefined>>();
  const problems: string[] = [];
  const str = (k: string) => o[k] as string | undefined;

  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min)
      problems.push(`${flag}: expected an integer >= ${min}, got "${v}"`);
    return n;
  };
  const prob = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0 || n > 1) {
      problems.push(`${flag}: expected a probability between 0 and 1, got "${v}"`);
      return 0;
    }
    return n;
  };
  const dur = (flag: string, v: string | undefined): number => {
    try {
      return parseDuration(v ?? '');
    } catch (e) {
      problems.push(`${flag}: ${(e as Error).message}`);
      return 0;
    }
  };

  const nDevices = int('--devices', str('devices'), 1);
  const rateHz = Number(str('rate'));
  if (!Number.isFinite(rateHz) || rateHz <= 0)
    problems.push(`--rate: expected a number of Hz > 0, got "${str('rate')}"`);

  const metrics = list(str('metrics') ?? '', []);
  for (const m of metrics)
    if (!isMetric(m)) problems.push(`--metrics: unknown metric "${m}", expected ${METRICS.join(', ')}`);
  if (metrics.length === 0) problems.push('--metrics: at least one metric is needed');
  if (new Set(metrics).size !== metrics.length) problems.push('--metrics: a metric is listed twice');

  const anomalies = list(str('anomalies') ?? '', []);
  for (const a of anomalies) {
    if (!(ANOMALY_KINDS as readonly string[]).includes(a)) {
      problems.push(`--anomalies: unknown kind "${a}", expected ${ANOMALY_KINDS.join(', ')}`);
    }
  }
  const anomalyRate = Number(str('anomalyRate'));
  if (!Number.isFinite(anomalyRate) || anomalyRate < 0)
    problems.push(`--anomaly-rate: expected a number >= 0, got "${str('anomalyRate')}"`);

  let ticks: number | null = null;
  let endKind: 'count' | 'duration' = 'count';
  if (o.duration !== undefined && o.count !== undefined)
    problems.push('--duration, --count: give one of them, not both');
  if (o.count !== undefined) ticks = int('--count', str('count'), 1);
  else if (o.duration !== undefined) {
    const ms = dur('--duration', str('duration'));
    endKind = 'duration';
    if (ms <= 0) problems.push('--duration: must be > 0');
    if (rateHz > 0) ticks = Math.max(1, Math.ceil((ms * rateHz) / 1000 - 1e-9));
  }

  const format = str('format') as Format;
  const group = o.group === true;
  if (group && !GROUPABLE.has(format))
    problems.push(`--group: not possible with --format ${format} (one reading per frame)`);

  const serial = (o.serial as string[] | undefined) ?? [];
  const outputs = [serial.length > 0, o.mqtt !== undefined, o.stdout === true].filter(Boolean).length;
  if (outputs !== 1) problems.push('output: give exactly one of --serial, --mqtt, --stdout');
  let output: OutputConfig = { kind: 'stdout' };
  if (serial.length > 0) {
    output = { kind: 'serial', paths: serial, baudRate: int('--baud-rate', str('baudRate'), 50) };
  } else if (o.mqtt !== undefined) {
    const url = str('mqtt')!;
    if (!/^(mqtts?|wss?|tcp|ssl):\/\/./.test(url))
      problems.push(`--mqtt: expected a URL such as mqtt://host:1883, got "${url}"`);
    const topicPattern = str('topicPattern')!;
    const oneReading = !group || metrics.length === 1;
    if (!topicPattern.includes('{device}')) problems.push('--topic-pattern: needs {device}');
    if (oneReading && !topicPattern.includes('{metric}') && (format === 'number' || format === 'kv')) {
      problems.push(`--topic-pattern: needs {metric} for --format ${format}`);
    }
    if (!oneReading && topicPattern.includes('{metric}')) {
      problems.push('--topic-pattern: grouped frames carry several metrics; drop {metric} from the pattern');
    }
    const maxInFlight = Number(str('mqttMaxInFlight'));
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      problems.push(`--mqtt-max-in-flight: expected a whole number ≥ 1, got "${str('mqttMaxInFlight')}"`);
    output = {
      kind: 'mqtt',
      url,
      topicPattern,
      qos: Number(str('qos')) as 0 | 1,
      maxInFlight,
      username: str('mqttUsername') ?? null,
      passwordFile: str('mqttPasswordFile') ?? null,
    };
  }
  if (format === 'number' && output.kind !== 'mqtt')
    problems.push('--format: number frames carry no device or metric; only with --mqtt');
  if (format === 'kv' && output.kind !== 'mqtt') {
    // kv frames carry no device: the receiving source supplies it, so a line may carry only one device.
    const lines = output.kind === 'serial' ? output.paths.length : 1;
    if (nDevices > lines)
      problems.push(`--format: kv frames carry no device; use at most one device per serial port (${lines})`);
  }

  const malformed = prob('--malformed', str('malformed'));
  const outOfOrder = prob('--out-of-order', str('outOfOrder'));
  const duplicates = prob('--duplicates', str('duplicates'));
  const maxDelayMs = dur('--max-delay', str('maxDelay'));
  const clockSkewMs = dur('--clock-skew', str('clockSkew'));

  let startTs = now;
  const st = str('startTs');
  if (st !== undefined) {
    startTs = /^\d+$/.test(st) ? Number(st) : Date.parse(st);
    if (!Number.isSafeInteger(startTs))
      problems.push(`--start-ts: expected epoch ms or ISO 8601, got "${st}"`);
  }

  const prefix = str('devicePrefix') ?? 'dev-';
  // Device names end up in topics, keys and tags (SPEC.md agent.id rule): no '/', '+', '#' or spaces.
  if (!/^[a-zA-Z0-9._-]{0,48}$/.test(prefix))
    problems.push(`--device-prefix: expected [a-zA-Z0-9._-]{0,48}, got "${prefix}"`);

  if (problems.length > 0) return { ok: false, problems };
  const width = Math.max(3, String(nDevices).length);
  return {
    ok: true,
    config: {
      devices: Array.from({ length: nDevices }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`),
      metrics: metrics as Metric[],
      rateHz,
      seed: str('seed') ?? '1',
      ticks,
      endKind,
      output,
      format,
      group,
      anomalies: anomalies as AnomalyKind[],
      anomalyRate,
      malformed,
      outOfOrder,
      maxDelayMs,
      duplicates,
      clockSkewMs,
      labels: str('labels') ?? null,
      report: str('report') ?? null,
      startTs,
      logLevel: str('logLevel') ?? 'info',
    },
  };
}

export { CommanderError };
