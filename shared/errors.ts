// One error class with a stable code (see docs/errors.md for the table). Tests assert `code`, never
// message text. `retriable` tells retry loops whether trying again can help.

export const ERROR_CODES = {
  CONFIG_INVALID: {
    retriable: false,
    doc: 'The configuration file failed validation; each problem is printed as `path: message`.',
  },
  CONFIG_UNREADABLE: {
    retriable: false,
    doc: 'The configuration file could not be read or is not valid YAML.',
  },
  FRAME_INVALID: { retriable: false, doc: 'A sensor frame could not be decoded; it is counted and skipped.' },
  BATCH_INVALID: {
    retriable: false,
    doc: 'An uplink batch failed schema validation; it goes to the dead-letter topic.',
  },
  ITEM_INVALID: {
    retriable: false,
    doc: 'One item of a batch failed validation; it goes to the dead-letter topic.',
  },
  AUTH_FAILED: { retriable: false, doc: 'An MQTT client presented no or wrong credentials.' },
  NOT_AUTHORIZED: { retriable: false, doc: 'An MQTT client published or subscribed outside its own topics.' },
  OUTBOX_FULL: {
    retriable: true,
    doc: 'The outbox reached buffer.maxBytes and the policy refused or dropped items.',
  },
  STORE_CORRUPT: {
    retriable: false,
    doc: 'The SQLite database could not be opened; it is moved aside and a new one started.',
  },
  STORE_WRITE_FAILED: {
    retriable: true,
    doc: 'A write to the SQLite database failed (disk full, read-only); retried.',
  },
  SOURCE_UNAVAILABLE: {
    retriable: true,
    doc: 'A source (serial port, broker) is not reachable; retried with backoff.',
  },
  UPLINK_UNAVAILABLE: {
    retriable: true,
    doc: 'No uplink broker accepted the connection; retried with backoff over all URLs.',
  },
  SINK_UNAVAILABLE: {
    retriable: true,
    doc: 'A sink (Kafka, InfluxDB) is not reachable; its spool cursor waits and retries.',
  },
  SINK_REJECTED: {
    retriable: false,
    doc: 'A sink refused a record permanently; it goes to the dead-letter topic.',
  },
  SPOOL_FULL: {
    retriable: true,
    doc: 'The collector spool reached spool.maxBytes; batches are not acknowledged until it drains.',
  },
  INGEST_RECORD_INVALID: {
    retriable: false,
    doc: 'Cluster mode: a forwarder cannot read an ingest record (or Kafka refuses its output for good); the raw record goes to the dead-letter topic.',
  },
  FORWARDER_FENCED: {
    retriable: false,
    doc: 'Cluster mode: another forwarder took over this input partition; this one drops it and waits for its own rebalance.',
  },
} as const satisfies Record<string, { retriable: boolean; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class EdgeflowError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgeflowError';
    this.code = code;
    this.retriable = options?.retriable ?? ERROR_CODES[code].retriable;
  }
}
