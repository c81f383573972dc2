// The Kafka I/O of cluster mode, as small client-agnostic interfaces (issue 17: the client can be swapped
// later; today kafkajs implements them in kafkajs-log.ts, the node24 branch brings @platformatic/kafka).
// The ingest node and the forwarders (policy: validation, dedup, retries, counters) see only these.
//
// Who guarantees what:
// - IngestProducer.send resolves only after every record was acknowledged by all in-sync replicas
//   (idempotent producer, acks=all); it is called with at most one send in flight.
// - GroupConsumer calls `assigned` with the member's whole assignment after each rebalance, before any
//   batch of that generation, and `batch` for one partition at a time per partition, in offset order.
//   A batch that returns false (not processed) is delivered again from its first record.
// - PartitionTx.commit is one Kafka transaction: output records, changelog records and the input offset
//   commit together or not at all. A fenced writer throws FencedError and must not be used again.
import { EdgeflowError } from '../../shared/errors.ts';
import type { OutRecord } from './output.ts';

export interface LogRecord {
  key: string;
  value: Buffer;
  headers?: Record<string, string>;
}

export interface IngestProducer {
  /** Verifies (or creates) the ingest topic and connects. */
  start(): Promise<void>;
  send(records: readonly LogRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface InputRecord {
  offset: string;
  key: string | null;
  value: Buffer | null;
  timestamp: number;
}

export interface InputBatch {
  partition: number;
  records: InputRecord[];
  /** Offset of the record after the last one in this batch (what gets committed). */
  next: string;
}

export interface GroupHandlers {
  assigned(partitions: readonly number[]): void;
  /** `keepAlive` heartbeats the group (call it while waiting); false = deliver this batch again. */
  batch(b: InputBatch, keepAlive: () => Promise<void>): Promise<boolean>;
}

export interface GroupConsumer {
  run(h: GroupHandlers): Promise<void>;
  /** Plain offset commit (the InfluxDB forwarder; the Kafka forwarder commits inside its transaction). */
  commit(partition: number, next: string): Promise<void>;
  stop(): Promise<void>;
}

/** A change to the dedup changelog: `value: null` is a tombstone. */
export interface ChangelogOp {
  key: string;
  value: string | null;
}

export interface PartitionTx {
  /**
   * One transaction. `beforeCommit` runs after the records were sent and before the commit (the
   * forwarder's status shows the open transaction; the fault test kills the process there).
   */
  commit(
    out: readonly OutRecord[],
    changelog: readonly ChangelogOp[],
    next: string,
    beforeCommit?: () => Promise<void>,
  ): Promise<void>;
  close(): Promise<void>;
}

export interface ForwarderLog {
  /** Verifies (or creates) the ingest topic, its changelog and the output topics. */
  ensureTopics(): Promise<void>;
  consumer(groupId: string): GroupConsumer;
  /**
   * Opens the transactional producer of one input partition (transactional id per partition: opening it
   * fences the previous owner and aborts its open transaction), then commits a marker into the
   * changelog partition and returns it: reading that partition up to the marker restores the state.
   */
  openPartition(partition: number): Promise<{ tx: PartitionTx; marker: string }>;
  /** Reads the changelog partitions of `markers` from the beginning up to each one's marker. */
  readChangelog(
    markers: ReadonlyMap<number, string>,
    apply: (partition: number, key: string, value: string | null) => void,
    keepAlive: () => Promise<void>,
  ): Promise<void>;
  close(): Promise<void>;
}

export class FencedError extends EdgeflowError {
  constructor(message: string) {
    super('FORWARDER_FENCED', message);
  }
}

/** Key of the restore marker in each changelog partition (compaction keeps only the latest). */
export const CHANGELOG_MARKER_KEY = '\u0000marker';

export function changelogTopic(ingestTopic: string): string {
  return `${ingestTopic}.dedup-changelog`;
}
