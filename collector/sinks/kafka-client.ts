// What the Kafka sink needs from a Kafka client library (issue 18): the sink builds the records, a
// client sends them. Two implementations: kafka-platformatic.ts (default) and kafka-kafkajs.ts
// (`kafka.client: kafkajs`). Both must give the same records on the wire: key, value, headers, the
// partition murmur2 picks for the key (as the Java client), idempotent, acks all, one request in flight.

export interface KafkaRecord {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

export interface KafkaErrorClass {
  /** False only when the record itself is refused (too large, invalid): retrying cannot help. */
  retriable: boolean;
  /** Short lower-case name for metrics and status (e.g. `message_too_large`, `network`). */
  code: string;
  message: string;
  /** The client lost its connections and must connect again before the next send. */
  disconnected: boolean;
}

export interface KafkaClient {
  /** Names of the topics the cluster has. */
  listTopics(): Promise<string[]>;
  /** Creates the topics and waits until they have leaders. */
  createTopics(topics: string[], numPartitions: number, replicationFactor: number): Promise<void>;
  /** Prepares the idempotent producer (connects, gets its producer id). */
  connectProducer(): Promise<void>;
  /** Sends every record; resolves once the broker acknowledged all of them (acks=-1). */
  send(byTopic: ReadonlyMap<string, KafkaRecord[]>, timeoutMs: number): Promise<void>;
  classify(err: unknown): KafkaErrorClass;
  close(): Promise<void>;
}

/**
 * Kafka errors that no retry can fix: the record itself is refused. Everything else (connection loss,
 * timeouts, leader elections, even authorisation, which an operator can fix) keeps the data in the
 * spool and is retried; an unknown error is never a reason to dead-letter.
 */
export const PERMANENT_KAFKA_ERRORS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
]);

/** murmur2 hash to partition, as the Java client and kafkajs: its positive 31 bits modulo the partition count. */
export const MURMUR2_POSITIVE_MASK = 0x7fffffff;
