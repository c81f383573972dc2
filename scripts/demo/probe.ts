// What the live view shows, read the way an operator would: the agent's /status and /metrics, the
// collector's /metrics, Kafka topic offsets (kafkajs admin) and InfluxQL counts over HTTP. Every probe
// has a short timeout and returns null instead of throwing, so a dead component shows as "-".
import { type Admin, Kafka, logLevel } from 'kafkajs';

/** Sum of a Prometheus metric's samples whose labels include `labels`. */
export function promSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eE]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** Per-label-value sums of a metric, e.g. readings_in_total by source. */
export function promBy(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eE]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const v = new RegExp(`${label}="([^"]*)"`).exec(m[2] ?? '')?.[1];
    if (v !== undefined) out[v] = (out[v] ?? 0) + Number(m[3]);
  }
  return out;
}

async function get(url: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(800) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

export async function getJson<T>(url: string): Promise<T | null> {
  const t = await get(url);
  try {
    return t === null ? null : (JSON.parse(t) as T);
  } catch {
    return null;
  }
}

export const getText = get;

export class KafkaProbe {
  private admin: Admin;
  private connected: Promise<void> | null = null;
  constructor(brokers: string[]) {
    this.admin = new Kafka({
      clientId: 'edgeflow-demo',
      brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 1 },
    }).admin();
  }
  /** Sum of the high watermarks of a topic's partitions (= records ever written), or null. */
  async offsets(topic: string): Promise<number | null> {
    try {
      this.connected ??= this.admin.connect();
      await this.connected;
      const parts = await this.admin.fetchTopicOffsets(topic);
      return parts.reduce((a, p) => a + Number(p.high), 0);
    } catch {
      this.connected = null;
      return null;
    }
  }
  async ensureTopics(topics: string[]): Promise<string[]> {
    this.connected ??= this.admin.connect();
    await this.connected;
    const have = new Set(await this.admin.listTopics());
    const missing = topics.filter((t) => !have.has(t));
    if (missing.length) {
      await this.admin.createTopics({
        topics: missing.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
        waitForLeaders: true,
      });
    }
    return missing;
  }
  async close(): Promise<void> {
    await this.admin.disconnect().catch(() => {});
  }
}

export interface InfluxTarget {
  url: string;
  db: string;
  username: string;
  password: string;
}

/** InfluxQL `/query` (v1 API, basic auth); the first value of the first series, or null. */
export async function influxScalar(t: InfluxTarget, q: string): Promise<number | null> {
  const u = new URL('/query', t.url);
  u.searchParams.set('db', t.db);
  u.searchParams.set('q', q);
  try {
    const res = await fetch(u, {
      headers: { authorization: `Basic ${Buffer.from(`${t.username}:${t.password}`).toString('base64')}` },
      signal: AbortSignal.timeout(1500),
    });
    if (!res.ok) return null;
    const body = (await res.json()) as {
      results?: { series?: { values?: unknown[][] }[]; error?: string }[];
    };
    const r = body.results?.[0];
    if (!r || r.error) return null;
    const v = r.series?.[0]?.values?.[0]?.[1];
    return typeof v === 'number' ? v : 0;
  } catch {
    return null;
  }
}
