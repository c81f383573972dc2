// The Kafka forwarder (`edgeflow-collector forward`, issue 17): a consumer group on the ingest topic.
// Per input partition it de-duplicates by (agent, id, rev) and writes the items to the output topics,
// the dedup changelog and the consumed offset in ONE Kafka transaction, so `read_committed` readers see
// each item once whatever crashes (docs/design/cluster.md). Policy only: the Kafka I/O is behind
// ForwarderLog (log.ts), implemented with kafkajs today (kafkajs-log.ts).
//
// Partition lifecycle: assigned → open (transactional id of the partition: fences the previous owner)
// → marker committed into the changelog partition → changelog read up to the marker (the state as of
// the last committed transaction) → batches. Any failed transaction throws the partition's state away
// and rebuilds it the same way (a commit whose outcome is unknown leaves memory and Kafka apart).
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import type { KafkaConfig } from '../config.ts';
import { classifyKafkaJsError } from '../sinks/kafka-kafkajs.ts';
import type { ClusterConfig } from './config.ts';
import { DedupWindow } from './dedup.ts';
import {
  type ChangelogOp,
  FencedError,
  type ForwarderLog,
  type InputBatch,
  type PartitionTx,
} from './log.ts';
import type { ForwarderMetrics } from './metrics.ts';
import { type OutRecord, outputRecord } from './output.ts';
import { decodeIngestRecord, IngestRecordError } from './record.ts';

/** The dedup window an item belongs to: its agent and kind. */
export function windowOf(agent: string, kind: string): string {
  return `${agent}\u0001${kind}`;
}

/** Ingest record bytes per transaction (~1,500 summaries): see `batch`. */
const MAX_TX_INPUT_BYTES = 512 * 1024;

interface PartitionState {
  tx: PartitionTx;
  dedup: DedupWindow;
}

export interface ForwarderOptions {
  /** Awaited between sending a transaction's records and committing it (fault tests hold it open). */
  beforeCommit?: () => Promise<void>;
  /** Wait after a failed attempt, ms. [1000] */
  retryDelayMs?: number;
}

export class KafkaForwarder {
  private readonly states = new Map<number, Promise<PartitionState>>();
  private assignment = new Set<number>();
  private readonly fenced = new Set<number>();
  /** Partitions whose next delivery goes one ingest record per transaction (after a permanent error). */
  private readonly oneByOne = new Set<number>();
  /** Per partition, an ingest record whose output Kafka refused for good: dead-lettered as it is. */
  private readonly refused = new Map<number, { offset: string; code: string }>();
  /** The dedup windows in use, for the gauge only. */
  private readonly windows = new Map<number, DedupWindow>();
  private readonly rl: RateLimitedLog;
  private stopped = false;
  private readonly stats = {
    transactions: 0,
    items: 0,
    duplicates: 0,
    restores: 0,
    restoredKeys: 0,
    openTransactions: 0,
  };

  constructor(
    private readonly kafka: KafkaConfig,
    private readonly cluster: ClusterConfig,
    private readonly io: ForwarderLog,
    private readonly metrics: ForwarderMetrics,
    private readonly log: Logger,
    private readonly opts: ForwarderOptions = {},
  ) {
    this.rl = new RateLimitedLog(log);
  }

  status() {
    return { ...this.stats, partitions: [...this.assignment].sort((a, b) => a - b) };
  }

  async start(): Promise<void> {
    await this.io.ensureTopics();
    const consumer = this.io.consumer(this.cluster.forwarderGroup);
    this.stopConsumer = () => consumer.stop();
    await consumer.run({
      assigned: (parts) => this.assigned(parts),
      batch: (b, keepAlive) => this.batch(b, keepAlive),
    });
  }

  private stopConsumer: () => Promise<void> = async () => {};

  async stop(): Promise<void> {
    this.stopped = true;
    await this.stopConsumer();
    const all = [...this.states.values()];
    this.states.clear();
    await Promise.all(all.map((s) => s.then((st) => st.tx.close()).catch(() => {})));
    await this.io.close();
  }

  /** A new generation: keep what we still own, drop the rest, prepare the new partitions together. */
  private assigned(parts: readonly number[]): void {
    const next = new Set(parts);
    this.fenced.clear();
    for (const [p, st] of this.states) {
      if (next.has(p)) continue;
      this.states.delete(p);
      st.then((s) => s.tx.close()).catch(() => {});
    }
    this.assignment = next;
    this.metrics.partitions.set(next.size);
    const fresh = parts.filter((p) => !this.states.has(p));
    if (fresh.length > 0) this.prepare(fresh);
  }

  private prepare(parts: readonly number[]): void {
    const all = this.restore(parts);
    all.catch(() => {});
    for (const p of parts) {
      const one = all.then((m) => m.get(p)!);
      one.catch(() => {});
      this.states.set(p, one);
    }
  }

  private async restore(parts: readonly number[]): Promise<Map<number, PartitionState>> {
    const t0 = performance.now();
    const opened = new Map<number, PartitionState>();
    const markers = new Map<number, string>();
    try {
      for (const p of parts) {
        const { tx, marker } = await this.io.openPartition(p);
        opened.set(p, { tx, dedup: new DedupWindow(this.cluster.dedupPerAgent) });
        markers.set(p, marker);
      }
      let keys = 0;
      await this.io.readChangelog(
        markers,
        (p, key, value) => {
          keys++;
          opened.get(p)?.dedup.apply(key, value);
        },
        async () => {},
      );
      this.stats.restores++;
      this.stats.restoredKeys += keys;
      this.log.info(
        { partitions: parts, changelogRecords: keys, ms: Math.round(performance.now() - t0) },
        'partitions restored (dedup state read from the changelog)',
      );
      return opened;
    } catch (e) {
      for (const s of opened.values()) await s.tx.close().catch(() => {});
      throw e;
    }
  }

  private async delay(ms: number, keepAlive: () => Promise<void>): Promise<void> {
    const until = performance.now() + ms;
    while (!this.stopped && performance.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(1, until - performance.now()))));
      await keepAlive().catch(() => {});
    }
  }

  /** Waits for the partition's state while heartbeating; undefined if it could not be prepared. */
  private async stateOf(p: number, keepAlive: () => Promise<void>): Promise<PartitionState | undefined> {
    if (!this.states.has(p)) this.prepare([p]);
    const pr = this.states.get(p)!;
    let settled = false;
    pr.then(
      () => (settled = true),
      () => (settled = true),
    );
    while (!settled && !this.stopped) {
      await Promise.race([pr.catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
      if (!settled) await keepAlive().catch(() => {});
    }
    try {
      return await pr;
    } catch (e) {
      if (this.states.get(p) === pr) this.states.delete(p);
      const c = classifyKafkaJsError(e);
      this.metrics.errors.inc({ code: c.code, stage: 'restore' });
      this.rl.warn(
        `restore:${c.code}`,
        { partition: p, err: c.message, code: c.code },
        'could not prepare partition; will retry',
      );
      return undefined;
    }
  }

  private async batch(b: InputBatch, keepAlive: () => Promise<void>): Promise<boolean> {
    const p = b.partition;
    if (this.stopped) return false;
    if (!this.assignment.has(p)) {
      await this.delay(1000, keepAlive);
      return false;
    }
    if (this.fenced.has(p)) {
      // Fenced although our last assignment has p: either we are the zombie and a rebalance is due (the
      // heartbeats below fail, kafkajs rejoins when we return, `assigned` tells), or we missed a
      // generation and own p again, in which case the next delivery re-opens it (fencing whoever held it).
      this.fenced.delete(p);
      await this.delay(2000, keepAlive);
      return false;
    }
    const st = await this.stateOf(p, keepAlive);
    if (!st) {
      await this.delay(this.opts.retryDelayMs ?? 1000, keepAlive);
      return false;
    }
    // Transactions of bounded size: a fetch can hold megabytes of ingest records, and one output
    // partition's record batch must stay under the broker's message.max.bytes (1 MiB by default).
    let from = 0;
    while (from < b.records.length) {
      let bytes = 0;
      let to = from;
      const limit = this.oneByOne.has(p) ? 0 : MAX_TX_INPUT_BYTES;
      while (to < b.records.length && (to === from || bytes < limit)) {
        bytes += b.records[to]!.value?.length ?? 0;
        to++;
      }
      const chunk = b.records.slice(from, to);
      const next = (BigInt(chunk.at(-1)!.offset) + 1n).toString();
      if (!(await this.transact(st, p, chunk, next, keepAlive))) return false;
      from = to;
    }
    this.oneByOne.delete(p);
    return true;
  }

  /** One transaction: the chunk's new items, their changelog records and the offset after the chunk. */
  private async transact(
    st: PartitionState,
    p: number,
    records: InputBatch['records'],
    next: string,
    keepAlive: () => Promise<void>,
  ): Promise<boolean> {
    const ops: ChangelogOp[] = [];
    const out: OutRecord[] = [];
    const kinds = new Map<string, number>();
    let dups = 0;
    for (const r of records) {
      if (r.value === null) continue;
      let decoded: ReturnType<typeof decodeIngestRecord>;
      try {
        const refused = this.refused.get(p);
        if (refused?.offset === r.offset)
          throw new IngestRecordError(`kafka refused its output: ${refused.code}`);
        decoded = decodeIngestRecord(r.value, r.timestamp);
      } catch (e) {
        if (!(e instanceof IngestRecordError)) throw e;
        // A record this version cannot read, or whose items Kafka refuses for good, is not lost: it goes
        // to the dead-letter topic as it is.
        this.metrics.dropped.inc({ reason: 'ingest_record' });
        this.rl.warn(
          'ingest_record',
          { partition: p, offset: r.offset, err: e.message },
          'ingest record dead-lettered',
        );
        const agent = r.key ?? 'unknown';
        if (st.dedup.see(windowOf(agent, 'ingest_record'), `ir:${p}:${r.offset}`, ops)) {
          out.push({
            topic: this.kafka.topics.deadletter,
            key: agent,
            value: r.value,
            headers: {
              'edgeflow-error': `ingest_record: ${e.message}`.slice(0, 2000),
              'edgeflow-agent': agent,
            },
          });
        }
        continue;
      }
      for (const it of decoded.items) {
        // One window per (agent, kind): within a kind the outbox sends in order, which is what bounds
        // how far back a re-send can reach (docs/design/cluster.md "Dedup state").
        if (it.dedupKey !== null && !st.dedup.see(windowOf(decoded.agent, it.item.kind), it.dedupKey, ops)) {
          dups++;
          continue;
        }
        out.push(outputRecord(it.item, this.kafka.topics));
        kinds.set(it.item.kind, (kinds.get(it.item.kind) ?? 0) + 1);
      }
    }
    this.stats.openTransactions++;
    try {
      await st.tx.commit(out, ops, next, this.opts.beforeCommit);
    } catch (e) {
      this.states.delete(p);
      await st.tx.close().catch(() => {});
      if (e instanceof FencedError) {
        this.fenced.add(p);
        this.metrics.errors.inc({ code: 'fenced', stage: 'commit' });
        this.log.warn(
          { partition: p, err: e.message, code: e.code },
          'fenced: another forwarder owns this partition now',
        );
        return false;
      }
      const c = classifyKafkaJsError(e);
      if (!c.retriable) {
        // A record refused for good (e.g. MESSAGE_TOO_LARGE): narrow it down one ingest record per
        // transaction, then dead-letter the one that still fails (as the single-node sink does per item).
        if (records.length > 1) this.oneByOne.add(p);
        else this.refused.set(p, { offset: records[0]!.offset, code: c.code });
      }
      this.metrics.errors.inc({ code: c.code, stage: 'commit' });
      this.rl.warn(
        `commit:${c.code}`,
        { partition: p, err: c.message, code: c.code },
        'transaction failed; partition state rebuilt, batch retried',
      );
      await this.delay(this.opts.retryDelayMs ?? 1000, keepAlive);
      return false;
    } finally {
      this.stats.openTransactions--;
    }
    if (this.refused.get(p)?.offset === records[0]?.offset) this.refused.delete(p);
    this.stats.transactions++;
    this.stats.items += out.length;
    this.stats.duplicates += dups;
    this.metrics.commits.inc();
    this.metrics.records.inc(records.length);
    for (const [kind, n] of kinds) this.metrics.items.inc({ kind }, n);
    if (dups > 0) this.metrics.duplicates.inc(dups);
    this.windows.set(p, st.dedup);
    let keys = 0;
    for (const [q, w] of this.windows) {
      if (this.assignment.has(q)) keys += w.keys;
      else this.windows.delete(q);
    }
    this.metrics.dedupKeys.set(keys);
    return true;
  }
}
