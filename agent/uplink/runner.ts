// The agent → collector uplink runner (SPEC.md section 3): the policy over a transport (transport.ts),
// as collector/sinks/runner.ts is over a Sink. Drains the outbox in batches, QoS 1, and deletes an item
// from the outbox only when the batch that carried it is acknowledged (SPEC.md section 5, STYLE.md
// "at-least-once by transaction"). Design notes: docs/design/outbox.md.
//
// Who owns retransmission: the outbox. The transport keeps no session and never re-publishes
// (mqtt-transport.ts); we reconnect ourselves (failover.ts). After a disconnect every un-acknowledged
// item simply becomes eligible again. It is re-sent with the SAME item id and rev inside a NEW batch
// (new batch id); the collector de-duplicates by item id+rev. Duplicates therefore happen only when a
// PUBACK was lost on the way back (inherent to QoS 1) — rare.
// What to send and when (drain order, batching, byte cuts, rate limit, gzip) is drain.ts.
//
// Also here: the retained status (on connect, every statusInterval, and on demand: publishStatusNow) and
// the downlink (subscribe: fleet control), re-subscribed after every reconnect.
import { type Clock, systemClock, type Timer } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { type Logger, nullLogger } from '../../shared/log.ts';
import type { Status } from '../../shared/model.ts';
import { uplinkTopic } from '../../shared/topics.ts';
import type { Outbox } from '../outbox/outbox.ts';
import { type DownlinkHandler, DownlinkRouter } from './downlink.ts';
import { Drain } from './drain.ts';
import { Failover } from './failover.ts';
import type { UplinkRunnerDeps, UplinkRunnerOptions, UplinkState } from './runner-options.ts';
import type { UplinkTransport } from './transport.ts';
import { type UplinkMetrics, uplinkMetrics } from './uplink-metrics.ts';

export type { DownlinkHandler } from './downlink.ts';
export { DRAIN_ORDER } from './drain.ts';
export type { UplinkRunnerDeps, UplinkRunnerOptions, UplinkState } from './runner-options.ts';

export class UplinkRunner {
  private readonly agentId: string;
  private readonly statusInterval: number;
  private readonly connectTimeout: number;
  private readonly pollInterval: number;
  private readonly failover: Failover;
  private readonly getStatus: (() => Status) | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly metrics: UplinkMetrics | null;

  /** Connection generation: events and batches of an older connection are ignored. */
  private gen = 0;
  private running = false;
  private connected = false;
  private attempting = false;
  private everConnected = false;

  private readonly drain: Drain;
  private readonly downlinks: DownlinkRouter;

  private pollTimer: Timer | null = null;
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

  constructor(
    opts: UplinkRunnerOptions,
    private readonly transport: UplinkTransport,
    private readonly outbox: Outbox,
    deps: UplinkRunnerDeps = {},
  ) {
    if (opts.urls.length === 0)
      throw new EdgeflowError('CONFIG_INVALID', 'uplink.urls: at least one URL is required');
    this.agentId = opts.agentId;
    const maxItems = opts.batch?.maxItems ?? 500;
    const maxInFlight = opts.maxInFlight ?? 8;
    this.statusInterval = opts.statusInterval ?? 10_000;
    this.connectTimeout = opts.connectTimeout ?? 10_000;
    this.pollInterval = opts.pollInterval ?? 100;
    if (!(maxItems >= 1)) throw new RangeError('uplink.batch.maxItems must be >= 1');
    if (!(maxInFlight >= 1)) throw new RangeError('uplink.maxInFlight must be >= 1');
    if (opts.drainRate !== undefined && !(opts.drainRate > 0))
      throw new RangeError('uplink.drainRate must be > 0');
    this.getStatus = deps.getStatus;
    this.log = deps.log ?? nullLogger();
    this.clock = deps.clock ?? systemClock;
    this.downlinks = new DownlinkRouter(this.log);
    this.failover = new Failover({
      urls: opts.urls,
      minMs: opts.backoff?.minMs,
      maxMs: opts.backoff?.maxMs,
      random: deps.random,
    });
    this.metrics = deps.registry ? uplinkMetrics(deps.registry) : null;
    this.drain = new Drain(
      {
        agentId: opts.agentId,
        maxItems,
        maxDelay: opts.batch?.maxDelay ?? 1000,
        sendWhenIdle: opts.batch?.sendWhenIdle ?? true,
        maxInFlight,
        maxBatchBytes: opts.maxBatchBytes ?? 512 * 1024,
        gzipFrom: opts.compress === 'gzip' ? (opts.compressThreshold ?? 1024) : undefined,
        drainRate: opts.drainRate,
      },
      {
        outbox,
        transport,
        clock: this.clock,
        log: this.log,
        counters: this.counters,
        metrics: this.metrics,
        stageLatency: deps.stageLatency,
        connected: () => this.connected,
        gen: () => this.gen,
        publishFailed: (message) => {
          this.lastError = message;
          this.onClosed(this.gen);
        },
      },
    );
    transport.on('connect', () => this.onConnected(this.gen));
    transport.on('close', () => this.onClosed(this.gen));
    transport.on('error', (err, code) => {
      this.lastError = err.message;
      this.metrics?.errors.inc({ code });
    });
    transport.on('message', (topic, payload) => this.downlinks.dispatch(topic, payload));
  }

  /**
   * Reads the credential and TLS files (a failure is a configuration error, thrown) and starts connecting.
   * Returns at once; `state().connected` tells when the link is up.
   */
  start(): void {
    if (this.running) return;
    this.transport.init();
    this.running = true;
    this.drain.start();
    this.pollTimer = this.clock.setInterval(() => this.drain.pump(), this.pollInterval);
    this.connect(this.failover.url);
  }

  /** Stops and disconnects. Items in flight stay in the outbox and are sent again after the next start. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of [this.pollTimer, this.statusTimer]) if (t) this.clock.clearInterval(t);
    for (const t of [this.reconnectTimer, this.connectTimer]) if (t) this.clock.clearTimeout(t);
    this.pollTimer = this.statusTimer = this.reconnectTimer = this.connectTimer = null;
    this.drain.stop();
    this.gen++;
    this.dropConnection();
    await this.transport.disconnect();
  }

  /**
   * Tell the uplink that items were appended (optional: it also polls every `pollInterval`).
   * `committed`: the seqs that commit stored (the outbox numbers an append's items consecutively); they
   * count as committed now for the uplink_queue stage.
   */
  notify(committed?: { from: number; to: number }): void {
    if (committed) this.drain.committed(committed);
    this.drain.pump();
  }

  /**
   * Graceful shutdown helper: sends partial batches at once (no maxDelay wait) and resolves true when the
   * outbox is empty and nothing is in flight, or false after `timeoutMs` — e.g. when the link is down.
   * The deadline is real time, not the injected clock (issue 13 exception): a shutdown must end even
   * under a test's fake clock that nobody advances.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.drain.flushing++;
    try {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        this.drain.pump();
        if (this.outbox.stats().items === 0 && this.drain.inFlightBatches === 0) return true;
        if (performance.now() >= deadline || !this.running) return false;
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      this.drain.flushing--;
    }
  }

  state(): UplinkState {
    return {
      connected: this.connected,
      url: this.url,
      lastError: this.lastError,
      ...this.counters,
      inFlight: this.drain.inFlightBatches,
      inFlightItems: this.drain.inFlightItems,
    };
  }

  // ---- downlink and status (fleet control, issue 15) ----

  /**
   * Receives every message on `topic` (exact topic, QoS 1) for as long as the runner runs: subscribed now
   * if connected, and again after every reconnect (the session is clean). Returns the unsubscribe.
   */
  subscribe(topic: string, onMessage: DownlinkHandler): () => void {
    if (this.downlinks.add(topic, onMessage) && this.connected) this.subscribeOn(this.gen, topic);
    return () => this.unsubscribe(topic, onMessage);
  }

  unsubscribe(topic: string, onMessage: DownlinkHandler): void {
    if (this.downlinks.remove(topic, onMessage) && this.connected)
      this.transport.unsubscribe(topic).catch(() => undefined);
  }

  /**
   * Publishes the retained status now (e.g. after applying a fleet document), besides the periodic one.
   * False when it cannot (link down, no status source); the next connect publishes it anyway.
   */
  publishStatusNow(): boolean {
    if (!this.getStatus || !this.connected) return false;
    this.publishStatus();
    return true;
  }

  private subscribeOn(gen: number, topic: string): void {
    this.transport.subscribe(topic).catch((err: Error) => {
      if (gen === this.gen && this.connected)
        this.log.warn({ topic, err: err.message }, 'uplink: downlink subscription failed');
    });
  }

  private publishStatus(): void {
    if (!this.getStatus || !this.connected) return;
    let body: string;
    try {
      body = JSON.stringify(this.getStatus());
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'uplink: status callback failed');
      return;
    }
    this.transport.publish(uplinkTopic(this.agentId, 'status'), body, { qos: 1, retain: true }, (err) => {
      if (!err) this.counters.statusSent++;
    });
  }

  // ---- connection policy (failover.ts decides which URL and when) ----

  private connect(url: string): void {
    if (!this.running) return;
    const gen = ++this.gen;
    this.url = url;
    this.attempting = true;
    this.log.debug({ url, gen }, 'uplink connecting');
    this.connectTimer = this.clock.setTimeout(() => {
      if (gen === this.gen && !this.connected) {
        this.lastError = `no CONNACK within ${this.connectTimeout} ms`;
        this.onClosed(gen);
      }
    }, this.connectTimeout);
    this.transport.connect(url);
  }

  private onConnected(gen: number): void {
    if (gen !== this.gen || !this.attempting) return;
    this.attempting = false;
    if (this.connectTimer) this.clock.clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.connected = true;
    if (this.everConnected) {
      this.counters.reconnects++;
      this.metrics?.reconnects.inc();
    }
    this.everConnected = true;
    this.failover.connected();
    this.log.info({ url: this.url }, 'uplink connected');
    for (const topic of this.downlinks.topics()) this.subscribeOn(gen, topic);
    this.publishStatus();
    if (this.getStatus)
      this.statusTimer = this.clock.setInterval(() => this.publishStatus(), this.statusInterval);
    this.drain.pump();
  }

  /** Idempotent per connection generation: 'close', connect timeout and publish errors all end up here. */
  private onClosed(gen: number): void {
    if (gen !== this.gen) return;
    this.gen++; // later events of that connection are ignored
    this.attempting = false;
    const wasConnected = this.connected;
    this.dropConnection();
    void this.transport.disconnect();
    if (!this.running) return;
    if (wasConnected) {
      this.log.warn({ url: this.url, err: this.lastError }, 'uplink connection lost; reconnecting');
      const next = this.failover.lost();
      this.scheduleReconnect(next.url, next.delayMs);
      return;
    }
    this.counters.connectFailures++;
    this.log.debug({ url: this.url, err: this.lastError }, 'uplink connect failed');
    const next = this.failover.failed();
    if (next.delayMs === 0) {
      this.connect(next.url); // failover: next URL right away
      return;
    }
    this.log.warn(
      { code: 'UPLINK_UNAVAILABLE', urls: this.failover.urls, retryInMs: next.delayMs, err: this.lastError },
      'no uplink broker reachable; retrying',
    );
    this.scheduleReconnect(next.url, next.delayMs);
  }

  /** Forgets the connection; whatever was in flight becomes eligible again (see the header). */
  private dropConnection(): void {
    this.connected = false;
    if (this.statusTimer) this.clock.clearInterval(this.statusTimer);
    if (this.connectTimer) this.clock.clearTimeout(this.connectTimer);
    this.statusTimer = this.connectTimer = null;
    this.drain.requeueAll();
  }

  private scheduleReconnect(url: string, ms: number): void {
    if (this.reconnectTimer) this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect(url);
    }, ms);
  }
}
