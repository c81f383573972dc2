// The InfluxDB forwarder (`edgeflow-collector forward --to influx`, issue 17): its own consumer group on
// the ingest topic; writes summaries, alerts and status through the single-node InfluxDB sink and commits
// the consumed offsets only after InfluxDB acknowledged the write. A point is identified by series and
// time, so writing a batch again after a crash (or an agent's re-send) overwrites the same points:
// no de-duplication state is needed here.
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { Sink } from '../sinks/sink.ts';
import type { SpoolItem } from '../spool/spool.ts';
import type { ClusterConfig } from './config.ts';
import type { GroupConsumer, InputBatch } from './log.ts';
import type { ForwarderMetrics } from './metrics.ts';
import { decodeIngestRecord, IngestRecordError } from './record.ts';

const STORED: ReadonlySet<string> = new Set(['summaries', 'alerts', 'status']);

export class InfluxForwarder {
  private readonly rl: RateLimitedLog;
  private stopped = false;
  private readonly stats = { writes: 0, items: 0, commits: 0, partitions: [] as number[] };

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly consumer: GroupConsumer,
    private readonly sink: Sink,
    private readonly metrics: ForwarderMetrics,
    log: Logger,
    private readonly retryDelayMs = 1000,
  ) {
    this.rl = new RateLimitedLog(log);
  }

  status() {
    return { ...this.stats, group: this.cluster.influxGroup };
  }

  async start(): Promise<void> {
    await this.sink.start();
    await this.consumer.run({
      assigned: (parts) => {
        this.stats.partitions = [...parts].sort((a, b) => a - b);
        this.metrics.partitions.set(parts.length);
      },
      batch: (b, keepAlive) => this.batch(b, keepAlive),
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer.stop();
    await this.sink.close();
  }

  private async pause(keepAlive: () => Promise<void>): Promise<void> {
    const until = performance.now() + this.retryDelayMs;
    while (!this.stopped && performance.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(500, this.retryDelayMs)));
      await keepAlive().catch(() => {});
    }
  }

  private async batch(b: InputBatch, keepAlive: () => Promise<void>): Promise<boolean> {
    const items: SpoolItem[] = [];
    for (const r of b.records) {
      if (r.value === null) continue;
      try {
        for (const it of decodeIngestRecord(r.value, r.timestamp).items) {
          if (STORED.has(it.item.kind)) items.push(it.item);
        }
      } catch (e) {
        if (!(e instanceof IngestRecordError)) throw e;
        // The Kafka forwarder dead-letters it; InfluxDB has no place for it.
        this.metrics.dropped.inc({ reason: 'ingest_record' });
        this.rl.warn(
          'ingest_record',
          { partition: b.partition, offset: r.offset, err: e.message },
          'unreadable ingest record skipped',
        );
      }
    }
    const size = this.sink.batchSize ?? 5000;
    for (let i = 0; i < items.length; ) {
      if (this.stopped) return false;
      const chunk = items.slice(i, i + size);
      const res = await this.sink.write(chunk);
      const retry = res.failed.filter((f) => f.retriable);
      if (retry.length > 0) {
        this.metrics.errors.inc({ code: retry[0]!.code, stage: 'write' });
        this.rl.warn(
          `write:${retry[0]!.code}`,
          { err: retry[0]!.error, code: retry[0]!.code },
          'influxdb write failed; retrying',
        );
        // Points already written are written again: same series and time, same point.
        await this.pause(keepAlive);
        continue;
      }
      for (const f of res.failed) {
        this.metrics.dropped.inc({ reason: f.code });
        this.rl.warn(
          `bad:${f.code}`,
          { err: f.error, code: f.code },
          'influxdb refused a point (not retried)',
        );
      }
      const kinds = new Map<string, number>();
      for (const it of chunk) kinds.set(it.kind, (kinds.get(it.kind) ?? 0) + 1);
      for (const [kind, n] of kinds) this.metrics.items.inc({ kind }, n);
      this.stats.writes++;
      this.stats.items += chunk.length - res.failed.length;
      i += chunk.length;
      await keepAlive().catch(() => {});
    }
    try {
      await this.consumer.commit(b.partition, b.next);
    } catch (e) {
      this.metrics.errors.inc({ code: 'offset_commit', stage: 'commit' });
      this.rl.warn(
        'offset_commit',
        { err: (e as Error).message },
        'offset commit failed; the batch is written again',
      );
      return false;
    }
    this.stats.commits++;
    this.metrics.commits.inc();
    this.metrics.records.inc(b.records.length);
    return true;
  }
}
