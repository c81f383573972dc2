// From an authorised PUBLISH to a spool commit. The broker calls `accept()` inside aedes'
// `authorizePublish` hook and only calls aedes back once it resolves: aedes writes the QoS 1 PUBACK
// (lib/handlers/publish.js, enqueuePublish) only after that callback, so a PUBACK always follows a
// spool commit. While the spool is full, `accept()` waits (FIFO) until sinks drain it: the agent sees
// no PUBACK, stops after its in-flight window and keeps buffering in its outbox (back-pressure).
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { UplinkKind } from '../../shared/topics.ts';
import type { CollectorMetrics } from '../metrics.ts';
import type { Spool, SpoolEntry } from '../spool/spool.ts';
import { ingestPublish } from './ingest.ts';

export interface AcceptResult {
  stored: number;
  duplicates: number;
  deadLetters: number;
}

export class IngestPipeline {
  private waiters: (() => void)[] = [];
  private pending: {
    entries: SpoolEntry[];
    resolve: (r: { stored: number; duplicates: number }) => void;
    reject: (e: Error) => void;
  }[] = [];
  private readonly rl: RateLimitedLog;

  constructor(
    private readonly spool: Spool,
    private readonly metrics: CollectorMetrics,
    log: Logger,
    private readonly opts: { maxInflatedBytes: number; maxItems: number },
    /** Sees every committed entry (fleet control follows statuses and alerts, issue 15). */
    private readonly onCommitted?: (entries: readonly SpoolEntry[]) => void,
  ) {
    this.rl = new RateLimitedLog(log);
    spool.on('drain', () => this.wake());
  }

  private wake(): void {
    this.metrics.spoolFull.set(this.spool.isFull() ? 1 : 0);
    while (this.waiters.length > 0 && !this.spool.isFull()) this.waiters.shift()!();
  }

  /** Number of publishes currently held because the spool is full. */
  get held(): number {
    return this.waiters.length;
  }

  async accept(agent: string, kind: UplinkKind, topic: string, payload: Buffer): Promise<AcceptResult> {
    const t0 = performance.now();
    if (this.spool.isFull() || this.waiters.length > 0) {
      this.metrics.backpressure.inc();
      this.metrics.spoolFull.set(1);
      this.rl.warn(
        'spool_full',
        { bytes: this.spool.sizeBytes, code: 'SPOOL_FULL' },
        'spool full: holding PUBACKs until sinks drain it',
      );
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const res = await ingestPublish(agent, kind, topic, payload, this.opts);
    const { stored, duplicates } = await this.commit(res.entries); // rejects (STORE_WRITE_FAILED): no PUBACK
    // Issue 19: authorised → committed, spool-full waits and the group commit included (PUBACK follows).
    this.metrics.deliveryStage.observe({ stage: 'spool_commit' }, (performance.now() - t0) / 1000);
    this.onCommitted?.(res.entries);
    this.metrics.batches.inc({ kind });
    if (res.validItems > 0) this.metrics.items.inc({ kind }, res.validItems);
    if (duplicates > 0) this.metrics.dedupHits.inc(duplicates);
    if (res.countersDropped > 0) this.metrics.statusCountersDropped.inc(res.countersDropped);
    for (const d of res.deadLetters) {
      this.metrics.deadLetters.inc({ reason: d.reason });
      this.rl.warn(
        `deadletter:${d.reason}`,
        { agent, topic, reason: d.reason, detail: d.detail.slice(0, 300) },
        'dead-lettered uplink data',
      );
    }
    this.metrics.spoolBytes.set(this.spool.sizeBytes);
    return { stored, duplicates, deadLetters: res.deadLetters.length };
  }

  /**
   * Group commit: publishes that arrive in the same turn of the event loop (aedes hands a socket read's
   * packets, and other clients' packets, to the hooks back to back) are written in one transaction, so
   * N agents cost one fsync instead of N. Each publish's PUBACK still waits for that commit.
   */
  private commit(entries: SpoolEntry[]): Promise<{ stored: number; duplicates: number }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entries, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const group = this.pending;
    this.pending = [];
    try {
      const results = this.spool.appendGroup(group.map((g) => g.entries));
      for (let i = 0; i < group.length; i++) group[i]!.resolve(results[i]!);
    } catch (e) {
      for (const g of group) g.reject(e as Error);
    }
  }

  /** Releases held publishes without writing (shutdown): their clients get no PUBACK and will resend. */
  release(): void {
    this.waiters = [];
  }
}
