// Lightweight simulated agents for fleet control at scale (issue 15): each is one MQTT client speaking the
// downlink/status contract of shared/fleet.ts, nothing more. It subscribes to its own downlink, verifies
// every document against the pinned key exactly as the real agent does (verifyDesiredState), checks the
// config with the agent's own schema, and reports in its status: `rejected` for a bad signature or an
// invalid config, `rolled_back` when a serial source names a port that does not exist (the real agent
// cannot open it and goes back to last-known-good), else `applied`. Used by test/fleet at 1,000 clients.

import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { agentSchema } from '../agent/load-config.ts';
import { type FleetReport, verifyDesiredState } from '../shared/fleet.ts';
import { describeIssues } from '../shared/model.ts';
import { downlinkTopic, uplinkTopic } from '../shared/topics.ts';

export interface SimAgentsOptions {
  url: string;
  ids: readonly string[];
  secret: string;
  publicKey: KeyObject;
  labels?: (id: string) => Record<string, string>;
  /** Connections opened at once while starting (the broker bounds connections not yet logged in). */
  connectConcurrency?: number;
}

export interface SimAgentState {
  id: string;
  applied: { version: number; hash: string };
  report: FleetReport | null;
  received: number;
}

export interface SimCounters {
  received: number;
  applied: number;
  rejected: number;
  rolledBack: number;
  /** Documents refused for their signature (unknown key, bad signature): never applied. */
  refusedSignature: number;
  /** Same version again (a retained re-publish after a collector restart): ignored. */
  ignored: number;
}

class SimAgent {
  client: MqttClient | null = null;
  applied = { version: 0, hash: '' };
  report: FleetReport | null = null;
  received = 0;
  private lastTs = 0;
  constructor(
    readonly id: string,
    private readonly owner: SimFleetAgents,
  ) {}

  connect(): Promise<void> {
    const o = this.owner.opts;
    const client = mqtt.connect(o.url, {
      username: this.id,
      password: o.secret,
      clientId: this.id,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 30_000,
    });
    this.client = client;
    client.on('error', (err) => {
      this.owner.lastError = `${this.id}: ${err.message}`;
    }); // reconnects on its own; the test asserts outcomes
    client.on('message', (_topic, payload) => this.onDocument(payload));
    return new Promise((resolve, reject) => {
      client.once('connect', () => {
        client.subscribe(downlinkTopic(this.id), { qos: 1 }, (err, granted) => {
          if (err || granted?.[0]?.qos === 128)
            return reject(err ?? new Error(`subscribe refused for ${this.id}`));
          this.publishStatus();
          resolve();
        });
      });
      // A refused or dropped CONNECT is retried by mqtt.js (reconnectPeriod); only an end() gives up.
      client.once('end', () => reject(new Error(`${this.id}: ended before connecting`)));
      const t = setTimeout(
        () =>
          reject(new Error(`${this.id}: not connected after 120 s (${this.owner.lastError ?? 'no error'})`)),
        120_000,
      );
      client.once('connect', () => clearTimeout(t));
    });
  }

  async disconnect(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.endAsync(true);
  }

  private onDocument(payload: Buffer): void {
    this.received++;
    const c = this.owner.counters;
    c.received++;
    const v = verifyDesiredState(payload, this.id, this.owner.opts.publicKey);
    const now = Date.now();
    if (!v.ok) {
      if (v.reason.startsWith('unknown key') || v.reason === 'bad signature') c.refusedSignature++;
      c.rejected++;
      let version = 0;
      let hash = '';
      try {
        const raw = JSON.parse(payload.toString()) as { version?: number; hash?: string };
        version = typeof raw.version === 'number' ? raw.version : 0;
        hash = typeof raw.hash === 'string' ? raw.hash : '';
      } catch {}
      this.setReport({ version, hash, state: 'rejected', reason: v.reason, at: now });
      return;
    }
    const doc = v.doc;
    if (doc.version <= this.applied.version) {
      c.ignored++;
      return;
    }
    const base = { version: doc.version, hash: doc.hash, rollout: doc.rollout, at: now };
    // A real agent merges the document over its local file; the sim has none, so the keys a document
    // never carries (its release key and URL, issue 16) get placeholders.
    const update = doc.config.update as Record<string, unknown> | undefined;
    const parsed = agentSchema.safeParse({
      ...doc.config,
      agent: { id: this.id, dataDir: '/sim' },
      ...(update
        ? { update: { publicKeyFile: '/sim/release.pub', url: 'http://sim.invalid', ...update } }
        : {}),
    });
    if (!parsed.success) {
      c.rejected++;
      this.setReport({
        ...base,
        state: 'rejected',
        reason: `invalid config: ${describeIssues(parsed.error)[0]}`,
      });
      return;
    }
    const sources = (doc.config.sources ?? []) as { name?: string; type?: string; path?: string }[];
    const missing = sources.find((s) => s.type === 'serial' && s.path && !existsSync(s.path));
    if (missing) {
      c.rolledBack++;
      this.setReport({
        ...base,
        state: 'rolled_back',
        reason: `source ${missing.name}: cannot open ${missing.path}`,
      });
      return;
    }
    c.applied++;
    this.applied = { version: doc.version, hash: doc.hash };
    this.setReport({ ...base, state: 'applied' });
  }

  private setReport(r: FleetReport): void {
    this.report = { ...r, lastKnownGood: { ...this.applied } };
    this.publishStatus();
  }

  publishStatus(): void {
    const c = this.client;
    if (!c) return;
    const ts = Math.max(Date.now(), this.lastTs + 1);
    this.lastTs = ts;
    const status = {
      agent: this.id,
      version: 'sim-0.0.0',
      startedAt: this.owner.startedAt,
      ts,
      clockSynced: true,
      outbox: { items: 0, bytes: 0, oldestTs: null },
      sources: {},
      counters: {},
      labels: this.owner.opts.labels?.(this.id) ?? {},
      ...(this.report ? { fleet: this.report } : {}),
    };
    c.publish(uplinkTopic(this.id, 'status'), JSON.stringify(status), { qos: 1 });
  }
}

export class SimFleetAgents {
  readonly counters: SimCounters = {
    received: 0,
    applied: 0,
    rejected: 0,
    rolledBack: 0,
    refusedSignature: 0,
    ignored: 0,
  };
  readonly startedAt = Date.now();
  private readonly agents = new Map<string, SimAgent>();
  /** The last client error (connection refused, CONNACK error), for a test's failure message. */
  lastError: string | null = null;

  constructor(readonly opts: SimAgentsOptions) {
    for (const id of opts.ids) this.agents.set(id, new SimAgent(id, this));
  }

  /** Connects the given agents (all by default), a bounded number at a time. */
  async start(ids: readonly string[] = this.opts.ids): Promise<void> {
    const queue = [...ids];
    const workers = Array.from({ length: this.opts.connectConcurrency ?? 50 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) await this.agents.get(id)!.connect();
    });
    await Promise.all(workers);
  }

  async stop(ids: readonly string[] = this.opts.ids): Promise<void> {
    await Promise.all(ids.map((id) => this.agents.get(id)!.disconnect()));
  }

  state(id: string): SimAgentState {
    const a = this.agents.get(id)!;
    return { id, applied: { ...a.applied }, report: a.report, received: a.received };
  }

  /** How many agents have applied exactly this version. */
  appliedAt(version: number): number {
    let n = 0;
    for (const a of this.agents.values()) if (a.applied.version === version) n++;
    return n;
  }
}
