// The ingest node's path from an authorised PUBLISH to Kafka (issue 17): validate as in single-node mode
// (ingest.ts), encode the entries as ingest records keyed by agent id, produce them, and resolve only once
// Kafka acknowledged them (acks=all). The broker sends the PUBACK when `accept()` resolves (broker.ts), so
// a PUBACK always follows a Kafka acknowledgement; a failed produce closes the agent's connection and
// its outbox re-sends. Nothing on the node matters after a crash.
//
// Group commit: publishes that arrive while a produce request is in flight go out together in the next
// one (the producer is idempotent with one request in flight, which keeps per-partition order).
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { UplinkKind } from '../../shared/topics.ts';
import { type IngestOptions, ingestPublish } from '../ingest/ingest.ts';
import type { AcceptResult } from '../ingest/pipeline.ts';
import type { CollectorMetrics } from '../metrics.ts';
import type { IngestProducer, LogRecord } from './log.ts';
import type { createIngestNodeMetrics } from './metrics.ts';
import { encodeIngestRecords } from './record.ts';

interface Pending {
  records: LogRecord[];
  bytes: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class IngestLog {
  private queue: Pending[] = [];
  private sending = false;
  private pendingBytes = 0;
  private waiters: (() => void)[] = [];
  private readonly rl: RateLimitedLog;

  constructor(
    private readonly producer: IngestProducer,
    private readonly node: string,
    private readonly metrics: CollectorMetrics,
    private readonly nodeMetrics: ReturnType<typeof createIngestNodeMetrics>,
    log: Logger,
    private readonly opts: {
      /** The single-node bounds (mqtt.maxBatchBytes, mqtt.maxBatchItems; issue 12), applied here too. */
      ingest: IngestOptions;
      maxPendingBytes: number;
      /** Awaited after Kafka acknowledged and before the PUBACK (the fault test holds PUBACKs here). */
      afterProduce?: (() => Promise<void>) | undefined;
    },
  ) {
    this.rl = new RateLimitedLog(log);
  }

  get held(): number {
    return this.waiters.length;
  }

  async accept(agent: string, kind: UplinkKind, topic: string, payload: Buffer): Promise<AcceptResult> {
    if (this.pendingBytes >= this.opts.maxPendingBytes) {
      // Kafka is slower than the fleet: hold the PUBACK (agents stop at their in-flight window).
      this.metrics.backpressure.inc();
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const res = await ingestPublish(agent, kind, topic, payload, this.opts.ingest);
    const values = encodeIngestRecords(agent, this.node, res.entries);
    const records = values.map((value) => ({ key: agent, value, headers: { 'edgeflow-agent': agent } }));
    const bytes = values.reduce((n, v) => n + v.length, 0);
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ records, bytes, resolve, reject });
      this.pendingBytes += bytes;
      this.nodeMetrics.pendingBytes.set(this.pendingBytes);
      if (!this.sending) this.flush();
    });
    if (this.opts.afterProduce) await this.opts.afterProduce();
    this.metrics.batches.inc({ kind });
    if (res.validItems > 0) this.metrics.items.inc({ kind }, res.validItems);
    if (res.countersDropped > 0) this.metrics.statusCountersDropped.inc(res.countersDropped);
    for (const d of res.deadLetters) {
      this.metrics.deadLetters.inc({ reason: d.reason });
      this.rl.warn(
        `deadletter:${d.reason}`,
        { agent, topic, reason: d.reason, detail: d.detail.slice(0, 300) },
        'dead-lettered uplink data',
      );
    }
    return { stored: res.entries.length, duplicates: 0, deadLetters: res.deadLetters.length };
  }

  private flush(): void {
    const group = this.queue;
    this.queue = [];
    if (group.length === 0) {
      this.sending = false;
      return;
    }
    this.sending = true;
    const records = group.flatMap((g) => g.records);
    this.producer.send(records).then(
      () => {
        this.nodeMetrics.produced.inc(records.length);
        this.settle(group, null);
      },
      (e: Error) => {
        this.nodeMetrics.produceErrors.inc({ code: (e as { type?: string }).type ?? e.name });
        this.rl.warn(
          'produce',
          { err: e.message, code: 'SINK_UNAVAILABLE' },
          'ingest produce failed: no PUBACK',
        );
        this.settle(group, e);
      },
    );
  }

  private settle(group: Pending[], err: Error | null): void {
    for (const g of group) {
      this.pendingBytes -= g.bytes;
      if (err) g.reject(err);
      else g.resolve();
    }
    this.nodeMetrics.pendingBytes.set(this.pendingBytes);
    while (this.waiters.length > 0 && this.pendingBytes < this.opts.maxPendingBytes) this.waiters.shift()!();
    this.flush();
  }

  /** Releases held publishes without producing (shutdown): their clients get no PUBACK and re-send. */
  release(): void {
    this.waiters = [];
  }
}
