// The agent → collector uplink over MQTT (SPEC.md section 3): drains the outbox in batches, QoS 1, and
// deletes an item from the outbox only in the PUBACK callback of the batch that carried it (SPEC.md
// section 5, STYLE.md "at-least-once by transaction"). Design notes: docs/design/outbox.md.
//
// Who owns retransmission: the outbox, not mqtt.js. Every connection is a fresh mqtt.js client with
// `clean: true` and `reconnectPeriod: 0`; we reconnect ourselves (URL failover, backoff). mqtt.js's own
// in-memory store would re-publish in-flight packets after a reconnect, and a `clean: false` session would
// have the broker hold them too; with both off, the only copy that matters is the outbox row, and after a
// disconnect every un-acknowledged item simply becomes eligible again. It is re-sent with the SAME item id
// and rev inside a NEW batch (new batch id); the collector de-duplicates by item id+rev. Duplicates
// therefore happen only when a PUBACK was lost on the way back (inherent to QoS 1) — rare.
//
// Order: alerts, then late events, then summaries (a backlog drains alerts first). Within a kind, batches
// leave in seq order; with several batches in flight (pipelining) the broker may acknowledge them in any
// order, which is fine because acknowledgement is by seq, not by position.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { Counter, Registry } from 'prom-client';
import { type Clock, systemClock, type Timer } from '../../shared/clock.ts';
import { readSecretFile } from '../../shared/config-file.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { newBatchId } from '../../shared/ids.ts';
import { type Logger, nullLogger } from '../../shared/log.ts';
import type { Status } from '../../shared/model.ts';
import { counterOn } from '../../shared/prom.ts';
import type { StageObserver } from '../../shared/stage-latency.ts';
import { downlinkTopic, uplinkTopic } from '../../shared/topics.ts';
import type { Outbox, OutboxKind, StoredItem } from '../outbox/outbox.ts';

export interface MqttUplinkOptions {
  agentId: string;
  /** Tried in order; after a failure the next one, round robin, with backoff after each full round. */
  urls: readonly string[];
  username?: string;
  /** File holding the password (trailing newline trimmed). Never logged. */
  passwordFile?: string;
  /** PEM file paths. */
  ca?: string;
  cert?: string;
  key?: string;
  /** [true] */
  rejectUnauthorized?: boolean;
  batch?: {
    /** Items per batch. [500] */
    maxItems?: number;
    /** Longest an item waits for its batch to fill, ms (monotonic). Alerts never wait. [1000] */
    maxDelay?: number;
    /**
     * Send a partial batch at once when nothing is in flight (the link is idle); wait up to maxDelay
     * only while earlier batches await their PUBACK, i.e. under load (issue 19: Nagle's algorithm,
     * Kafka's linger.ms). false = every partial batch waits maxDelay. [true]
     */
    sendWhenIdle?: boolean;
  };
  /**
   * Upper bound on a batch's JSON size before compression, bytes; a batch is cut earlier when its items
   * would exceed it (one oversized item still goes alone). Keep it under the collector's mqtt.maxPacketSize. [524288]
   */
  maxBatchBytes?: number;
  /** Batches published and not yet acknowledged. [8] */
  maxInFlight?: number;
  /** Cap on items/s for summaries and late events (backlog drain); alerts are never throttled. [none] */
  drainRate?: number;
  /** gzip batches of at least `compressThreshold` bytes. ['none'] */
  compress?: 'gzip' | 'none';
  /** bytes [1024] */
  compressThreshold?: number;
  /** 4 = MQTT 3.1.1 (the collector's aedes speaks only this), 5 = MQTT 5 (content type property). [4] */
  protocolVersion?: 4 | 5;
  /** Retained status message period, ms; also sent on every connect. [10000] */
  statusInterval?: number;
  /** ms [10000] */
  connectTimeout?: number;
  /** s [30] */
  keepalive?: number;
  /** Reconnect backoff, ms, exponential with full jitter. [500, 30000] */
  backoff?: { minMs?: number; maxMs?: number };
  /** How often the outbox is looked at when nothing else wakes the loop, ms. [100] */
  pollInterval?: number;
}

export interface MqttUplinkDeps {
  /** The runtime's status object (shared/model.ts statusSchema). Without it no status is published. */
  getStatus?: () => Status;
  log?: Logger;
  clock?: Clock;
  /** Registers edgeflow_agent_uplink_* counters when given. */
  registry?: Registry;
  random?: () => number;
  /** Observes the uplink_queue and uplink_ack stages (the agent's edgeflow_agent_delivery_stage_seconds). */
  stageLatency?: StageObserver;
  /**
   * Fleet control (issue 15): subscribe to the agent's downlink (QoS 1) on every connection and hand
   * each payload here. Sessions are clean (see the header), so the subscription is renewed per connect
   * and the collector's retained document arrives again each time; the handler de-duplicates.
   */
  onDownlink?: (payload: Buffer) => void;
}

export interface UplinkState {
  connected: boolean;
  url: string | null;
  lastError: string | null;
  batchesSent: number;
  itemsSent: number;
  bytesSent: number;
  /** Batches published, not yet acknowledged. */
  inFlight: number;
  inFlightItems: number;
  reconnects: number;
  connectFailures: number;
  /** Items that were in flight when a connection dropped and became eligible to be sent again. */
  requeuedItems: number;
  statusSent: number;
}

/** Priority of kinds when draining (SPEC.md section 2: alerts are never behind summaries). */
export const DRAIN_ORDER: readonly OutboxKind[] = ['alerts', 'late', 'summaries'];

interface InFlightBatch {
  id: string;
  kind: OutboxKind;
  seqs: number[];
  gen: number;
  bytes: number;
  /** Monotonic time of the publish (the uplink_ack stage). */
  sentAt: number;
}

/**
 * Commit marks kept for the uplink_queue stage: enough for ~7 minutes of checkpoints at 10/s. Items
 * committed before the oldest mark (a longer outage, or by an earlier process) are not observed; the
 * outbox_oldest_age gauge shows those.
 */
const MAX_COMMIT_MARKS = 4096;

export class MqttUplink {
  private readonly o: Required<
    Pick<
      MqttUplinkOptions,
      | 'maxInFlight'
      | 'maxBatchBytes'
      | 'compress'
      | 'compressThreshold'
      | 'protocolVersion'
      | 'statusInterval'
      | 'connectTimeout'
      | 'keepalive'
      | 'pollInterval'
    >
  > &
    MqttUplinkOptions;
  private readonly maxItems: number;
  private readonly maxDelay: number;
  private readonly sendWhenIdle: boolean;
  private readonly stageLatency: StageObserver | undefined;
  /** Seq ranges of recent checkpoints with the monotonic time of their commit, oldest first: see notify(). */
  private commitMarks: { from: number; to: number; at: number }[] = [];
  private readonly backoffMin: number;
  private readonly backoffMax: number;
  private readonly outbox: Outbox;
  private readonly getStatus: (() => Status) | undefined;
  private readonly onDownlink: ((payload: Buffer) => void) | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly metrics: {
    batches: Counter<'kind'>;
    items: Counter<'kind'>;
    requeued: Counter<'kind'>;
    reconnects: Counter;
    errors: Counter<'code'>;
  } | null;

  private client: MqttClient | null = null;
  private gen = 0;
  private running = false;
  private connected = false;
  private everConnected = false;
  private urlIndex = 0;
  private failedInRound = 0;
  private backoffAttempt = 0;
  private secrets: Pick<IClientOptions, 'password' | 'ca' | 'cert' | 'key'> = {};

  /** Highest seq handed to a batch per kind: the next peek starts after it, so nothing in flight is re-sent. */
  private readonly cursor: Record<OutboxKind, number> = { alerts: 0, late: 0, summaries: 0 };
  /** When (monotonic) the head of a partially filled batch was first seen, per kind. */
  private readonly partialSince: Record<OutboxKind, { seq: number; at: number } | null> = {
    alerts: null,
    late: null,
    summaries: null,
  };
  private readonly inFlight = new Map<string, InFlightBatch>();
  private inFlightItems = 0;
  private tokens = 0;
  private tokensAt = 0;
  private pumping = false;
  private flushing = 0;
  private wakeNeeded = 0;

  private pollTimer: Timer | null = null;
  private wakeTimer: Timer | null = null;
  private wakeAt = Number.POSITIVE_INFINITY;
  private statusTimer: Timer | null = null;
  private reconnectTimer: Timer | null = null;
  private connectTimer: Timer | null = null;

  private readonly counters = {
    batchesSent: 0,
    itemsSent: 0,
    bytesSent: 0,
    reconnects: 0,
    connectFailures: 0,
    requeuedItems: 0,
    statusSent: 0,
  };
  private url: string | null = null;
  private lastError: string | null = null;

  constructor(opts: MqttUplinkOptions, outbox: Outbox, deps: MqttUplinkDeps = {}) {
    if (opts.urls.length === 0)
      throw new EdgeflowError('CONFIG_INVALID', 'uplink.urls: at least one URL is required');
    this.o = {
      maxInFlight: 8,
      maxBatchBytes: 512 * 1024,
      compress: 'none',
      compressThreshold: 1024,
      protocolVersion: 4,
      statusInterval: 10_000,
      connectTimeout: 10_000,
      keepalive: 30,
      pollInterval: 100,
      ...stripUndefined(opts),
    };
    this.maxItems = opts.batch?.maxItems ?? 500;
    this.maxDelay = opts.batch?.maxDelay ?? 1000;
    this.sendWhenIdle = opts.batch?.sendWhenIdle ?? true;
    this.stageLatency = deps.stageLatency;
    this.backoffMin = opts.backoff?.minMs ?? 500;
    this.backoffMax = opts.backoff?.maxMs ?? 30_000;
    if (!(this.maxItems >= 1)) throw new RangeError('uplink.batch.maxItems must be >= 1');
    if (!(this.o.maxInFlight >= 1)) throw new RangeError('uplink.maxInFlight must be >= 1');
    if (opts.drainRate !== undefined && !(opts.drainRate > 0))
      throw new RangeError('uplink.drainRate must be > 0');
    this.outbox = outbox;
    this.getStatus = deps.getStatus;
    this.onDownlink = deps.onDownlink;
    this.log = deps.log ?? nullLogger();
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    const r = deps.registry;
    this.metrics = r
      ? {
          batches: counterOn(
            r,
            'edgeflow_agent_uplink_batches_total',
            'Batches acknowledged by the collector',
            ['kind'],
          ),
          items: counterOn(r, 'edgeflow_agent_uplink_items_total', 'Items acknowledged by the collector', [
            'kind',
          ]),
          requeued: counterOn(
            r,
            'edgeflow_agent_uplink_requeued_items_total',
            'In-flight items made eligible again after a disconnect (will be re-sent)',
            ['kind'],
          ),
          reconnects: counterOn(r, 'edgeflow_agent_uplink_reconnects_total', 'Successful reconnections', []),
          errors: counterOn(r, 'edgeflow_agent_uplink_errors_total', 'Uplink connection errors', ['code']),
        }
      : null;
  }

  /**
   * Reads the credential and TLS files (a failure is a configuration error, thrown) and starts connecting.
   * Returns at once; `state().connected` tells when the link is up.
   */
  start(): void {
    if (this.running) return;
    const readFile = (what: string, path: string | undefined, secret = false) => {
      if (path === undefined) return undefined;
      try {
        return secret ? readSecretFile(path) : readFileSync(path);
      } catch (e) {
        throw new EdgeflowError(
          'CONFIG_INVALID',
          `uplink.${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`,
          {
            cause: e,
          },
        );
      }
    };
    this.secrets = {
      password: readFile('passwordFile', this.o.passwordFile, true) as string | undefined,
      ca: readFile('ca', this.o.ca) as Buffer | undefined,
      cert: readFile('cert', this.o.cert) as Buffer | undefined,
      key: readFile('key', this.o.key) as Buffer | undefined,
    };
    this.running = true;
    this.tokens = this.maxItems;
    this.tokensAt = this.clock.monotonic();
    this.pollTimer = this.clock.setInterval(() => this.pump(), this.o.pollInterval);
    this.connect();
  }

  /** Stops and disconnects. Items in flight stay in the outbox and are sent again after the next start. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of [this.pollTimer, this.wakeTimer, this.statusTimer]) if (t) this.clock.clearInterval(t);
    for (const t of [this.reconnectTimer, this.connectTimer]) if (t) this.clock.clearTimeout(t);
    this.pollTimer = this.wakeTimer = this.statusTimer = this.reconnectTimer = this.connectTimer = null;
    const c = this.client;
    this.dropConnection();
    if (c) await c.endAsync(true).catch(() => undefined);
  }

  /**
   * Tell the uplink that items were appended (optional: it also polls every `pollInterval`).
   * `committed`: the seqs that commit stored (the outbox numbers an append's items consecutively); they
   * count as committed now for the uplink_queue stage.
   */
  notify(committed?: { from: number; to: number }): void {
    if (committed && committed.to >= committed.from && this.stageLatency) {
      this.commitMarks.push({ ...committed, at: this.clock.monotonic() });
      if (this.commitMarks.length > MAX_COMMIT_MARKS) this.commitMarks.splice(0, MAX_COMMIT_MARKS / 4);
    }
    this.pump();
  }

  /** When the item `seq` was committed (monotonic), from the commit marks; undefined if unknown. */
  private committedAt(seq: number): number | undefined {
    const m = this.commitMarks;
    // The first mark whose range ends at or above seq (binary search: marks ascend).
    let lo = 0;
    let hi = m.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (m[mid]!.to >= seq) hi = mid;
      else lo = mid + 1;
    }
    const mark = m[lo];
    return mark && mark.from <= seq ? mark.at : undefined;
  }

  /**
   * Graceful shutdown helper: sends partial batches at once (no maxDelay wait) and resolves true when the
   * outbox is empty and nothing is in flight, or false after `timeoutMs` (real time) — e.g. when the link is down.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.flushing++;
    try {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        this.pump();
        if (this.outbox.stats().items === 0 && this.inFlight.size === 0) return true;
        if (performance.now() >= deadline || !this.running) return false;
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      this.flushing--;
    }
  }

  state(): UplinkState {
    return {
      connected: this.connected,
      url: this.url,
      lastError: this.lastError,
      ...this.counters,
      inFlight: this.inFlight.size,
      inFlightItems: this.inFlightItems,
    };
  }

  // ---- connection ----

  private connect(): void {
    if (!this.running) return;
    const url = this.o.urls[this.urlIndex]!;
    const gen = ++this.gen;
    this.url = url;
    const opts: IClientOptions = {
      clientId: `edgeflow-${this.o.agentId}`,
      clean: true, // see the header: the outbox owns retransmission
      reconnectPeriod: 0, // we reconnect ourselves, with failover
      connectTimeout: this.o.connectTimeout,
      keepalive: this.o.keepalive,
      protocolVersion: this.o.protocolVersion,
      username: this.o.username,
      rejectUnauthorized: this.o.rejectUnauthorized ?? true,
      ...stripUndefined(this.secrets),
    };
    this.log.debug({ url, gen }, 'uplink connecting');
    const client = mqtt.connect(url, opts);
    this.client = client;
    this.connectTimer = this.clock.setTimeout(() => {
      if (gen === this.gen && !this.connected) {
        this.lastError = `no CONNACK within ${this.o.connectTimeout} ms`;
        this.onClosed(gen);
      }
    }, this.o.connectTimeout);
    client.on('connect', () => this.onConnected(gen));
    client.on('error', (err) => {
      if (gen !== this.gen) return;
      this.lastError = err.message;
      const code = (err as { code?: string | number }).code;
      this.metrics?.errors.inc({
        code: typeof code === 'string' ? code : code === undefined ? 'unknown' : `connack_${code}`,
      });
    });
    client.on('close', () => this.onClosed(gen));
    if (this.onDownlink) {
      const down = downlinkTopic(this.o.agentId);
      client.on('message', (topic, payload) => {
        if (gen === this.gen && topic === down) this.onDownlink?.(payload);
      });
    }
  }

  private onConnected(gen: number): void {
    if (gen !== this.gen) return;
    if (this.connectTimer) this.clock.clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.connected = true;
    if (this.everConnected) {
      this.counters.reconnects++;
      this.metrics?.reconnects.inc();
    }
    this.everConnected = true;
    this.failedInRound = 0;
    this.backoffAttempt = 0;
    this.log.info({ url: this.url }, 'uplink connected');
    if (this.onDownlink && this.client) {
      const down = downlinkTopic(this.o.agentId);
      this.client.subscribe(down, { qos: 1 }, (err, granted) => {
        // A broker ACL that refuses the subscription answers 0x80 in the SUBACK, not an error.
        if (err || granted?.[0]?.qos === 128)
          this.log.warn({ topic: down, err: err?.message }, 'uplink: downlink subscription refused');
      });
    }
    this.publishStatus();
    if (this.getStatus)
      this.statusTimer = this.clock.setInterval(() => this.publishStatus(), this.o.statusInterval);
    this.pump();
  }

  /** Idempotent per connection generation: 'close', connect timeout and publish errors all end up here. */
  private onClosed(gen: number): void {
    if (gen !== this.gen) return;
    this.gen++; // later events of that client are ignored
    const wasConnected = this.connected;
    const c = this.client;
    this.dropConnection();
    c?.end(true);
    if (!this.running) return;
    if (wasConnected) {
      this.log.warn({ url: this.url, err: this.lastError }, 'uplink connection lost; reconnecting');
      this.scheduleReconnect(this.nextBackoff()); // same URL first: the broker may just have restarted
      return;
    }
    this.counters.connectFailures++;
    this.log.debug({ url: this.url, err: this.lastError }, 'uplink connect failed');
    this.failedInRound++;
    this.urlIndex = (this.urlIndex + 1) % this.o.urls.length;
    if (this.failedInRound >= this.o.urls.length) {
      this.failedInRound = 0;
      const delay = this.nextBackoff();
      this.log.warn(
        { code: 'UPLINK_UNAVAILABLE', urls: this.o.urls, retryInMs: delay, err: this.lastError },
        'no uplink broker reachable; retrying',
      );
      this.scheduleReconnect(delay);
    } else {
      this.connect(); // failover: next URL right away
    }
  }

  /** Forgets the connection; whatever was in flight becomes eligible again (see the header). */
  private dropConnection(): void {
    this.connected = false;
    this.client = null;
    if (this.statusTimer) this.clock.clearInterval(this.statusTimer);
    if (this.connectTimer) this.clock.clearTimeout(this.connectTimer);
    this.statusTimer = this.connectTimer = null;
    for (const b of this.inFlight.values()) {
      this.counters.requeuedItems += b.seqs.length;
      this.metrics?.requeued.inc({ kind: b.kind }, b.seqs.length);
    }
    this.inFlight.clear();
    this.inFlightItems = 0;
    // Acknowledged items are gone from the outbox, so peeking from the start yields exactly the
    // un-acknowledged ones, oldest first.
    for (const k of DRAIN_ORDER) {
      this.cursor[k] = 0;
      this.partialSince[k] = null;
    }
  }

  private nextBackoff(): number {
    const ceiling = Math.min(this.backoffMax, this.backoffMin * 2 ** Math.min(this.backoffAttempt++, 30));
    return Math.round(this.backoffMin + this.random() * (ceiling - this.backoffMin)); // full jitter above a floor
  }

  private scheduleReconnect(ms: number): void {
    if (this.reconnectTimer) this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, ms);
  }

  // ---- draining ----

  private pump(): void {
    if (!this.connected || this.pumping || !this.client) return;
    this.pumping = true;
    try {
      const now = this.clock.monotonic();
      // Nothing in flight: the link is idle, so a partial batch gains nothing by waiting (issue 19).
      const idle = this.sendWhenIdle && this.inFlight.size === 0;
      let wakeIn = Number.POSITIVE_INFINITY;
      // Partial batches still within maxDelay. They go early if a lower-priority kind is about to be sent,
      // so a waiting alert/late batch is never overtaken by summaries.
      const deferred: { kind: OutboxKind; items: StoredItem[] }[] = [];
      outer: for (const kind of DRAIN_ORDER) {
        while (this.inFlight.size < this.o.maxInFlight) {
          const peeked = this.outbox.peek(kind, this.maxItems, this.cursor[kind]);
          if (peeked.length === 0) break;
          const items = this.cutToBytes(peeked);
          const full = items.length === this.maxItems || items.length < peeked.length;
          if (!full && kind !== 'alerts' && this.flushing === 0 && !idle) {
            const head = items[0]!.seq;
            let since = this.partialSince[kind];
            if (!since || since.seq !== head) since = this.partialSince[kind] = { seq: head, at: now };
            const left = since.at + this.maxDelay - now;
            if (left > 0) {
              wakeIn = Math.min(wakeIn, left);
              deferred.push({ kind, items });
              break;
            }
          }
          for (let d = deferred.shift(); d; d = deferred.shift()) {
            if (!this.trySend(d.kind, d.items, now)) break outer;
          }
          if (this.inFlight.size >= this.o.maxInFlight) break outer; // `items` waits for the next slot
          if (!this.trySend(kind, items, now)) break outer;
        }
        if (this.inFlight.size >= this.o.maxInFlight) break;
      }
      if (this.wakeNeeded > 0) wakeIn = Math.min(wakeIn, this.wakeNeeded);
      this.wakeNeeded = 0;
      if (wakeIn !== Number.POSITIVE_INFINITY) this.wakeAfter(wakeIn);
    } finally {
      this.pumping = false;
    }
  }

  /** The longest prefix of `items` whose batch stays within maxBatchBytes (at least one item). */
  private cutToBytes(items: StoredItem[]): StoredItem[] {
    let size = 128; // envelope: {"v":1,"agent":...,"batch":...,"items":[]}
    for (let i = 0; i < items.length; i++) {
      size += items[i]!.json.length + 1;
      if (size > this.o.maxBatchBytes && i > 0) return items.slice(0, i);
    }
    return items;
  }

  /** Sends one batch unless the drain rate says wait (then records when to wake); false = stop pumping. */
  private trySend(kind: OutboxKind, items: StoredItem[], now: number): boolean {
    if (kind !== 'alerts' && this.o.drainRate !== undefined) {
      const wait = this.takeTokens(items.length, now);
      if (wait > 0) {
        this.wakeNeeded = this.wakeNeeded > 0 ? Math.min(this.wakeNeeded, wait) : wait;
        return false;
      }
    }
    this.partialSince[kind] = null;
    this.send(kind, items);
    return this.connected; // false if the publish failed synchronously
  }

  /** Token bucket (burst = one batch): returns 0 and takes the tokens, or the ms to wait. */
  private takeTokens(n: number, now: number): number {
    const rate = this.o.drainRate!;
    this.tokens = Math.min(this.maxItems, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    return Math.ceil(((n - this.tokens) * 1000) / rate);
  }

  private wakeAfter(ms: number): void {
    const at = this.clock.monotonic() + ms;
    if (this.wakeTimer && at >= this.wakeAt) return;
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, ms);
  }

  private send(kind: OutboxKind, items: StoredItem[]): void {
    const client = this.client!;
    const id = newBatchId(this.o.agentId);
    // The stored JSON is spliced in as is: no parse/stringify per item on the hot path.
    const parts = new Array<string>(items.length);
    for (let i = 0; i < items.length; i++) parts[i] = items[i]!.json;
    let payload = Buffer.from(
      `{"v":1,"agent":${JSON.stringify(this.o.agentId)},"batch":${JSON.stringify(id)},"items":[${parts.join(',')}]}`,
    );
    const opts: IClientPublishOptions = { qos: 1 };
    if (this.o.compress === 'gzip' && payload.length >= this.o.compressThreshold) {
      payload = gzipSync(payload); // sync keeps publish order = drain order; ~1 ms for a 150 KB batch
      if (this.o.protocolVersion === 5) opts.properties = { contentType: 'application/json+gzip' };
    } else if (this.o.protocolVersion === 5) {
      opts.properties = { contentType: 'application/json' };
    }
    const sentAt = this.clock.monotonic();
    const batch: InFlightBatch = {
      id,
      kind,
      seqs: items.map((i) => i.seq),
      gen: this.gen,
      bytes: payload.length,
      sentAt,
    };
    if (this.stageLatency) {
      const committedAt = this.committedAt(items[0]!.seq);
      if (committedAt !== undefined)
        this.stageLatency.observe({ stage: 'uplink_queue' }, (sentAt - committedAt) / 1000);
    }
    this.cursor[kind] = items[items.length - 1]!.seq;
    this.inFlight.set(id, batch);
    this.inFlightItems += batch.seqs.length;
    client.publish(uplinkTopic(this.o.agentId, kind), payload, opts, (err) => this.onPublished(batch, err));
  }

  private onPublished(batch: InFlightBatch, err: Error | undefined): void {
    if (err) {
      // A connection that is closing fails its in-flight publishes: onClosed already requeued them.
      // Any other publish error while connected (packet too large, ...) also drops the connection, so the
      // single requeue path handles it and nothing is ever half-tracked.
      if (batch.gen === this.gen && this.inFlight.has(batch.id)) {
        this.lastError = `publish failed: ${err.message}`;
        this.log.warn(
          { err: err.message, kind: batch.kind, items: batch.seqs.length },
          'uplink publish failed; reconnecting',
        );
        this.onClosed(this.gen);
      }
      return;
    }
    // PUBACK: the collector has the batch. Acknowledge even if the connection has since dropped and the
    // items were requeued: the delete is idempotent and saves a re-send.
    try {
      this.outbox.ack(batch.seqs);
    } catch (e) {
      // Only a closed outbox (shutdown race) or a bug gets here; the items stay and are sent again.
      this.log.error(
        { err: (e as Error).message, kind: batch.kind, items: batch.seqs.length },
        'uplink: outbox ack failed',
      );
      return;
    }
    if (this.inFlight.get(batch.id) === batch) {
      this.inFlight.delete(batch.id);
      this.inFlightItems -= batch.seqs.length;
    }
    this.stageLatency?.observe({ stage: 'uplink_ack' }, (this.clock.monotonic() - batch.sentAt) / 1000);
    this.counters.batchesSent++;
    this.counters.itemsSent += batch.seqs.length;
    this.counters.bytesSent += batch.bytes;
    this.metrics?.batches.inc({ kind: batch.kind });
    this.metrics?.items.inc({ kind: batch.kind }, batch.seqs.length);
    this.pump();
  }

  /** Fleet control (issue 15): a transition is reported at once, not at the next statusInterval. */
  publishStatusNow(): void {
    this.publishStatus();
  }

  private publishStatus(): void {
    if (!this.getStatus || !this.connected || !this.client) return;
    let body: string;
    try {
      body = JSON.stringify(this.getStatus());
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'uplink: status callback failed');
      return;
    }
    this.client.publish(uplinkTopic(this.o.agentId, 'status'), body, { qos: 1, retain: true }, (err) => {
      if (!err) this.counters.statusSent++;
    });
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
