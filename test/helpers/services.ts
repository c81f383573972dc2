// Endpoints of the real-services test bed (scripts/services.sh up writes .services/env.json) and small
// helpers the integration tests share. A missing env.json is an error, not a skip: an integration test
// that silently skips proves nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';

export interface ServicesEnv {
  kafka: { brokers: string[] };
  influx1: {
    url: string;
    db: string;
    username: string;
    password: string;
    adminUser: string;
    adminPassword: string;
  };
  victoria: { url: string };
  mosquitto: { url: string };
}

/** The repository root: $EDGEFLOW_ROOT (set by scripts/test.mjs) or two levels above this file. */
export function repoRoot(): string {
  return process.env.EDGEFLOW_ROOT ?? fileURLToPath(new URL('../..', import.meta.url));
}

let cached: ServicesEnv | undefined;

/** The endpoints; throws with what to do when the test bed was never started. */
export function services(): ServicesEnv {
  if (cached) return cached;
  const file = join(process.env.EDGEFLOW_SERVICES_DIR ?? join(repoRoot(), '.services'), 'env.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(
      `${file} is missing: the integration tests need the real services. Run \`npm run services up\` ` +
        '(or `npm test`, which starts them) first.',
      { cause: e },
    );
  }
  const env = JSON.parse(text) as ServicesEnv;
  if (!env.kafka?.brokers?.length || !env.influx1?.url || !env.victoria?.url || !env.mosquitto?.url) {
    throw new Error(`${file} lacks endpoints; re-run \`npm run services up\``);
  }
  cached = env;
  return env;
}

let seq = 0;

/** A name no other test (in this or a concurrent process) uses: `<base>.<pid>.<time>.<n>`. */
export function uniqueName(base: string): string {
  seq += 1;
  return `${base}.${process.pid}.${Date.now().toString(36)}.${seq}`;
}

/**
 * Creates a fresh topic (the broker runs with auto.create.topics.enable=false) and waits until its
 * partitions have leaders. Returns the full, unique topic name.
 */
export async function createTopic(base = 'test', { partitions = 1 } = {}): Promise<string> {
  const topic = uniqueName(base);
  const admin = new Kafka({
    clientId: 'edgeflow-test-admin',
    brokers: services().kafka.brokers,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 15_000,
    });
    if (!created) throw new Error(`topic ${topic} already existed`);
  } finally {
    await admin.disconnect();
  }
  return topic;
}

export interface InfluxQLSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}
export interface InfluxQLResponse {
  results: { statement_id: number; series?: InfluxQLSeries[]; error?: string }[];
}

/** An HTTP error from a test-bed server, with its status and body for assertions. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status}: ${body}`);
  }
}

/**
 * InfluxQL over the v1 HTTP API (`/query`, basic auth), timestamps as epoch ms. Uses the test user on
 * the test database unless told otherwise; throws HttpError on a non-2xx status and Error on a
 * statement error.
 */
export async function influxQuery(
  q: string,
  opts: { db?: string; username?: string; password?: string; admin?: boolean } = {},
): Promise<InfluxQLResponse> {
  const env = services().influx1;
  const username = opts.username ?? (opts.admin ? env.adminUser : env.username);
  const password = opts.password ?? (opts.admin ? env.adminPassword : env.password);
  const url = new URL('/query', env.url);
  url.searchParams.set('db', opts.db ?? env.db);
  url.searchParams.set('epoch', 'ms');
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ q }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (!res.ok) throw new HttpError(res.status, body, `influx query ${JSON.stringify(q)}`);
  const json = JSON.parse(body) as InfluxQLResponse;
  const failed = json.results.find((r) => r.error);
  if (failed) throw new Error(`influx query ${JSON.stringify(q)}: ${failed.error}`);
  return json;
}

export interface VictoriaSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

/**
 * Every sample of the series matching a selector (e.g. `{__name__="x_value",run="abc"}`), read with
 * `/api/v1/export` after `/internal/force_flush` so that just-written samples are visible.
 */
export async function victoriaExport(match: string): Promise<VictoriaSeries[]> {
  const base = services().victoria.url;
  const flush = await fetch(new URL('/internal/force_flush', base), { signal: AbortSignal.timeout(10_000) });
  if (!flush.ok) throw new HttpError(flush.status, await flush.text(), 'victoria force_flush');
  const url = new URL('/api/v1/export', base);
  url.searchParams.append('match[]', match);
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  if (!res.ok) throw new HttpError(res.status, body, `victoria export ${match}`);
  return body
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as VictoriaSeries);
}
