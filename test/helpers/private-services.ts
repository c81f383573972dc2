// Private Kafka and InfluxDB 1.x instances for tests that stop and restart them (test/e2e/faults.test.ts):
// the shared test bed (scripts/services.sh) keeps running for everyone else. Same software as the test
// bed: Kafka from the jars services.sh caches (`${EDGEFLOW_CACHE:-~/.cache/edgeflow}/kafka-3.9.1/libs`,
// KRaft, one combined broker+controller, auto-create off) and Debian's `influxd` (auth off). Free ports,
// own temporary directories; `stop()` / `start()` keep the data, so a restart is a real outage and
// recovery. Processes run in their own process group; `kill()` SIGKILLs it (after() hooks).
import { type ChildProcess, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { tempDir } from './agent-process.ts';
import { freePort } from './mosquitto.ts';
import { spawnTracked } from './processes.ts';
import { waitFor } from './wait.ts';

export interface PrivateService {
  /** Log file of the process (appended across restarts). */
  logFile: string;
  dir: string;
  running(): boolean;
  /** Graceful stop (SIGTERM; SIGKILL after `graceMs`), waits for the exit. */
  stop(graceMs?: number): Promise<void>;
  /** Starts again on the same ports and data; resolves when usable. */
  start(): Promise<void>;
  /** SIGKILL, no wait for readiness of anything (cleanup). */
  kill(): Promise<void>;
}

export interface PrivateKafka extends PrivateService {
  brokers: string[];
}

export interface PrivateInflux extends PrivateService {
  url: string;
}

const KAFKA_VERSION = '3.9.1';

export function kafkaLibs(): string {
  const cache = process.env.EDGEFLOW_CACHE ?? join(homedir(), '.cache', 'edgeflow');
  return join(cache, `kafka-${KAFKA_VERSION}`, 'libs');
}

function managed(
  name: string,
  dir: string,
  argv: string[],
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Omit<PrivateService, 'dir'> & { proc(): ChildProcess | null } {
  const logFile = join(dir, `${name}.log`);
  let proc: ChildProcess | null = null;
  let exited: Promise<unknown> | null = null;
  const alive = () => proc !== null && proc.exitCode === null && proc.signalCode === null;
  const start = async () => {
    if (alive()) return;
    const log = createWriteStream(logFile, { flags: 'a' });
    const p = spawnTracked(argv[0]!, argv.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.pipe(log);
    p.stderr!.pipe(log);
    proc = p;
    exited = once(p, 'exit');
    const died = exited.then(() => {
      throw new Error(`${name} exited (${p.exitCode ?? p.signalCode}) before it was ready; log: ${logFile}`);
    });
    died.catch(() => {});
    await Promise.race([waitFor(`${name} ready`, ready, { timeoutMs, intervalMs: 250 }), died]);
  };
  const signal = (s: NodeJS.Signals) => {
    if (!alive() || proc!.pid === undefined) return;
    try {
      process.kill(-proc!.pid, s);
    } catch {
      proc!.kill(s);
    }
  };
  return {
    logFile,
    proc: () => proc,
    running: alive,
    start,
    async stop(graceMs = 30_000) {
      if (!alive()) return;
      signal('SIGTERM');
      const t = setTimeout(() => signal('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (!alive()) return;
      signal('SIGKILL');
      await exited;
    },
  };
}

/** A single-node KRaft Kafka (broker + controller) on free ports, topics never auto-created. */
export async function startKafka(opts: { heap?: string; timeoutMs?: number } = {}): Promise<PrivateKafka> {
  const libs = kafkaLibs();
  if (!existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    throw new Error(`Kafka jars missing in ${libs}: run \`npm run services up\` once (it fetches them)`);
  }
  const dir = tempDir('edgeflow-kafka-');
  const port = await freePort();
  const controller = await freePort();
  mkdirSync(join(dir, 'data'));
  const props = join(dir, 'server.properties');
  writeFileSync(
    props,
    `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=${join(dir, 'data')}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
default.replication.factor=1
min.insync.replicas=1
num.partitions=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.segment.bytes=16777216
`,
  );
  const log4j = join(dir, 'log4j.properties');
  writeFileSync(
    log4j,
    `log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
`,
  );
  const cp = `${libs}/*`;
  const fmt = spawnSync(
    'java',
    [
      '-Xmx256m',
      '-XX:TieredStopAtLevel=1',
      `-Dlog4j.configuration=file:${log4j}`,
      '-cp',
      cp,
      'kafka.tools.StorageTool',
      'format',
      '--ignore-formatted',
      '-t',
      'ZWRnZWZsb3ctcHJpdmF0ZQ',
      '-c',
      props,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (fmt.status !== 0)
    throw new Error(`kafka storage format failed (${fmt.status}): ${fmt.stderr}${fmt.stdout}`);
  const brokers = [`127.0.0.1:${port}`];
  const kafka = new Kafka({
    clientId: 'edgeflow-private-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 2000,
  });
  const heap = opts.heap ?? '384m';
  const m = managed(
    'kafka',
    dir,
    [
      'java',
      `-Xmx${heap}`,
      `-Xms${heap}`,
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${log4j}`,
      `-Dkafka.logs.dir=${dir}`,
      '-cp',
      cp,
      'kafka.Kafka',
      props,
    ],
    async () => {
      // Usable = the broker is registered and answers metadata for a topic that has a leader.
      const admin = kafka.admin();
      try {
        await admin.connect();
        const topics = await admin.listTopics();
        if (!topics.includes('edgeflow.private.probe')) {
          await admin.createTopics({
            topics: [{ topic: 'edgeflow.private.probe', numPartitions: 1, replicationFactor: 1 }],
            waitForLeaders: true,
            timeout: 10_000,
          });
        }
        const md = await admin.fetchTopicMetadata({ topics: ['edgeflow.private.probe'] });
        return md.topics[0]?.partitions.every((p) => p.leader >= 0) ?? false;
      } catch {
        return false;
      } finally {
        await admin.disconnect().catch(() => {});
      }
    },
    opts.timeoutMs ?? 120_000,
  );
  await m.start();
  return { ...m, dir, brokers };
}

/** InfluxDB 1.x (`influxd`) on free ports, auth off, its own meta/data/wal directories. */
export async function startInfluxV1(opts: { timeoutMs?: number } = {}): Promise<PrivateInflux> {
  const dir = tempDir('edgeflow-influx-');
  const http = await freePort();
  const rpc = await freePort();
  for (const d of ['meta', 'data', 'wal']) mkdirSync(join(dir, d));
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpc}"
[meta]
  dir = "${join(dir, 'meta')}"
[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${http}"
  auth-enabled = false
  log-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`,
  );
  const url = `http://127.0.0.1:${http}`;
  const m = managed(
    'influxd',
    dir,
    ['influxd', '-config', conf],
    async () => {
      try {
        const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2000) });
        return r.status === 204;
      } catch {
        return false;
      }
    },
    opts.timeoutMs ?? 60_000,
  );
  await m.start();
  return { ...m, dir, url };
}
