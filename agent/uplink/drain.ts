// What the uplink sends, and when: the outbox drained in batches over the current connection (runner.ts
// owns the connection). Order: alerts, then late events, then summaries (a backlog drains alerts
// first). Within a kind, batches leave in seq order; with several batches in flight (pipelining) the
// broker may acknowledge them in any order, which is fine because acknowledgement is by seq, not by
// position. An item leaves the outbox only in the PUBACK of the batch that carried it.
import type { Counter } from 'prom-client';
import type { Clock, Timer } from '../../shared/clock.ts';
import { newBatchId } from '../../shared/ids.ts';
import type { Logger } from '../../shared/log.ts';
import type { StageObserver } from '../../shared/stage-latency.ts';
import { uplinkTopic } from '../../shared/topics.ts';
import type { Outbox, OutboxKind, StoredItem } from '../outbox/outbox.ts';
import { CommitMarks, cutToBytes, encodeBatch, TokenBucket } from './batch.ts';
import type { UplinkTransport } from './transport.ts';

/** Priority of kinds when draining (SPEC.md section 2: alerts are never behind summaries). */
export const DRAIN_ORDER: readonly OutboxKind[] = ['alerts', 'late', 'summaries'];

export interface DrainSettings {
  agentId: string;
  maxItems: number;
  maxDelay: number;
  sendWhenIdle: boolean;
  maxInFlight: number;
  maxBatchBytes: number;
  /** gzip batches from this many bytes; undefined = never. */
  gzipFrom: number | undefined;
  drainRate: number | undefined;
}

/** Counts the drain shares with the runner's state(). */
export interface DrainCounters {
  batchesSent: number;
  itemsSent: number;
  bytesSent: number;
  requeuedItems: number;
}

export interface DrainDeps {
  outbox: Outbox;
  transport: UplinkTransport;
  clock: Clock;
  log: Logger;
  counters: DrainCounters;
  metrics: { batches: Counter<'kind'>; items: Counter<'kind'>; requeued: Counter<'kind'> } | null;
  stageLatency: StageObserver | undefined;
  /** The runner's connection: is it up, and its generation (batches of an older one are not tracked). */
  connected: () => boolean;
  gen: () => number;
  /** A publish failed while its connection was current: the runner drops the connection. */
  publishFailed: (message: string) => void;
}

interface InFlightBatch {
  id: string;
  kind: OutboxKind;
  seqs: number[];
  gen: number;
  bytes: number;
  /** Monotonic time of the publish (the uplink_ack stage). */
  sentAt: number;
}

export class Drain {
  /** Highest seq handed to a batch per kind: the next peek starts after it, so nothing in flight is re-sent. */
  private readonly cursor: Record<OutboxKind, number> = { alerts: 0, late: 0, summaries: 0 };
  /** When (monotonic) the head of a partially filled batch was first seen, per kind. */
  private readonly partialSince: Record<OutboxKind, { seq: number; at: number } | null> = {
    alerts: null,
    late: null,
    summaries: null,
  };
  private readonly inFlight = new Map<string, InFlightBatch>();
  private inFlightItemCount = 0;
  private readonly commitMarks = new CommitMarks();
  private bucket: TokenBucket | null = null;
  private pumping = false;
  /** > 0 while flush() runs: partial batches go at once. */
  flushing = 0;
  private wakeNeeded = 0;
  private wakeTimer: Timer | null = null;
  private wakeAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly s: DrainSettings,
    private readonly d: DrainDeps,
  ) {}

  start(): void {
    if (this.s.drainRate !== undefined)
      this.bucket = new TokenBucket(this.s.drainRate, this.s.maxItems, this.d.clock.monotonic());
  }

  stop(): void {
    if (this.wakeTimer) this.d.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }

  get inFlightBatches(): number {
    return this.inFlight.size;
  }

  get inFlightItems(): number {
    return this.inFlightItemCount;
  }

  /** Items were committed with these seqs (the uplink_queue stage starts now). */
  committed(c: { from: number; to: number }): void {
    if (this.d.stageLatency) this.commitMarks.add(c.from, c.to, this.d.clock.monotonic());
  }

  /** The connection is gone: whatever was in flight becomes eligible again (runner.ts header). */
  requeueAll(): void {
    for (const b of this.inFlight.values()) {
      this.d.counters.requeuedItems += b.seqs.length;
      this.d.metrics?.requeued.inc({ kind: b.kind }, b.seqs.length);
    }
    this.inFlight.clear();
    this.inFlightItemCount = 0;
    // Acknowledged items are gone from the outbox, so peeking from the start yields exactly the
    // un-acknowledged ones, oldest first.
    for (const k of DRAIN_ORDER) {
      this.cursor[k] = 0;
      this.partialSince[k] = null;
    }
  }

  pump(): void {
    if (!this.d.connected() || this.pumping) return;
    this.pumping = true;
    try {
      const { maxInFlight, maxItems, maxBatchBytes, maxDelay } = this.s;
      const now = this.d.clock.monotonic();
      // Nothing in flight: the link is idle, so a partial batch gains nothing by waiting (issue 19).
      const idle = this.s.sendWhenIdle && this.inFlight.size === 0;
      let wakeIn = Number.POSITIVE_INFINITY;
      // Partial batches still within maxDelay. They go early if a lower-priority kind is about to be sent,
      // so a waiting alert/late batch is never overtaken by summaries.
      const deferred: { kind: OutboxKind; items: StoredItem[] }[] = [];
      outer: for (const kind of DRAIN_ORDER) {
        while (this.inFlight.size < maxInFlight) {
          const peeked = this.d.outbox.peek(kind, maxItems, this.cursor[kind]);
          if (peeked.length === 0) break;
          const items = cutToBytes(peeked, maxBatchBytes);
          const full = items.length === maxItems || items.length < peeked.length;
          if (!full && kind !== 'alerts' && this.flushing === 0 && !idle) {
            const head = items[0]!.seq;
            let since = this.partialSince[kind];
            if (!since || since.seq !== head) since = this.partialSince[kind] = { seq: head, at: now };
            const left = since.at + maxDelay - now;
            if (left > 0) {
              wakeIn = Math.min(wakeIn, left);
              deferred.push({ kind, items });
              break;
            }
          }
          for (let d = deferred.shift(); d; d = deferred.shift()) {
            if (!this.trySend(d.kind, d.items, now)) break outer;
          }
          if (this.inFlight.size >= maxInFlight) break outer; // `items` waits for the next slot
          if (!this.trySend(kind, items, now)) break outer;
        }
        if (this.inFlight.size >= maxInFlight) break;
      }
      if (this.wakeNeeded > 0) wakeIn = Math.min(wakeIn, this.wakeNeeded);
      this.wakeNeeded = 0;
      if (wakeIn !== Number.POSITIVE_INFINITY) this.wakeAfter(wakeIn);
    } finally {
      this.pumping = false;
    }
  }

  /** Sends one batch unless the drain rate says wait (then records when to wake); false = stop pumping. */
  private trySend(kind: OutboxKind, items: StoredItem[], now: number): boolean {
    if (kind !== 'alerts' && this.bucket) {
      const wait = this.bucket.take(items.length, now);
      if (wait > 0) {
        this.wakeNeeded = this.wakeNeeded > 0 ? Math.min(this.wakeNeeded, wait) : wait;
        return false;
      }
    }
    this.partialSince[kind] = null;
    this.send(kind, items);
    return this.d.connected(); // false if the publish failed synchronously
  }

  private wakeAfter(ms: number): void {
    const clock = this.d.clock;
    const at = clock.monotonic() + ms;
    if (this.wakeTimer && at >= this.wakeAt) return;
    if (this.wakeTimer) clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = clock.setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, ms);
  }

  private send(kind: OutboxKind, items: StoredItem[]): void {
    const { agentId } = this.s;
    const id = newBatchId(agentId);
    const { payload, contentType } = encodeBatch(agentId, id, items, this.s.gzipFrom);
    const sentAt = this.d.clock.monotonic();
    const batch: InFlightBatch = {
      id,
      kind,
      seqs: items.map((i) => i.seq),
      gen: this.d.gen(),
      bytes: payload.length,
      sentAt,
    };
    if (this.d.stageLatency) {
      const committedAt = this.commitMarks.committedAt(items[0]!.seq);
      if (committedAt !== undefined)
        this.d.stageLatency.observe({ stage: 'uplink_queue' }, (sentAt - committedAt) / 1000);
    }
    this.cursor[kind] = items[items.length - 1]!.seq;
    this.inFlight.set(id, batch);
    this.inFlightItemCount += batch.seqs.length;
    this.d.transport.publish(uplinkTopic(agentId, kind), payload, { qos: 1, contentType }, (err) =>
      this.onPublished(batch, err),
    );
  }

  private onPublished(batch: InFlightBatch, err: Error | undefined): void {
    const { log, counters, metrics } = this.d;
    if (err) {
      // A connection that is closing fails its in-flight publishes: the runner already requeued them.
      // Any other publish error while connected (packet too large, ...) also drops the connection, so the
      // single requeue path handles it and nothing is ever half-tracked.
      if (batch.gen === this.d.gen() && this.inFlight.has(batch.id)) {
        log.warn(
          { err: err.message, kind: batch.kind, items: batch.seqs.length },
          'uplink publish failed; reconnecting',
        );
        this.d.publishFailed(`publish failed: ${err.message}`);
      }
      return;
    }
    // PUBACK: the collector has the batch. Acknowledge even if the connection has since dropped and the
    // items were requeued: the delete is idempotent and saves a re-send.
    try {
      this.d.outbox.ack(batch.seqs);
    } catch (e) {
      // Only a closed outbox (shutdown race) or a bug gets here; the items stay and are sent again.
      log.error(
        { err: (e as Error).message, kind: batch.kind, items: batch.seqs.length },
        'uplink: outbox ack failed',
      );
      return;
    }
    if (this.inFlight.get(batch.id) === batch) {
      this.inFlight.delete(batch.id);
      this.inFlightItemCount -= batch.seqs.length;
    }
    this.d.stageLatency?.observe({ stage: 'uplink_ack' }, (this.d.clock.monotonic() - batch.sentAt) / 1000);
    counters.batchesSent++;
    counters.itemsSent += batch.seqs.length;
    counters.bytesSent += batch.bytes;
    metrics?.batches.inc({ kind: batch.kind });
    metrics?.items.inc({ kind: batch.kind }, batch.seqs.length);
    this.pump();
  }
}
