// The uplink transport contract: the I/O under the uplink runner (runner.ts), as collector/sinks/sink.ts
// is under collector/sinks/runner.ts. A transport only does I/O on one connection at a time; the runner
// owns every policy: which URL and when (failover, backoff, connect deadline), what to send (drain
// order, batching, byte cuts, rate limit, compression), the retained status, and what a lost connection
// means for the items in flight.
//
// Who guarantees what:
// - `connect(url)` starts one attempt; a transport never reconnects by itself (no hidden retry, no
//   session store: the outbox owns retransmission, see runner.ts). Exactly one of 'connect' or 'close'
//   follows, and after 'connect' a 'close' when that connection ends. `disconnect()` (or a new
//   `connect`) silences every later event of the previous connection.
// - `publish` calls `done` once: without an error when the broker acknowledged it (QoS 1 PUBACK), with
//   one when it failed or the connection ended first.
// - Subscriptions belong to the connection (clean session): the runner subscribes again after each
//   'connect'. 'message' delivers what the broker sends on them (the downlink).

export interface TransportPublishOptions {
  qos: 0 | 1;
  retain?: boolean;
  /** MIME type of the payload; sent where the protocol can carry it (MQTT 5 content type). */
  contentType?: string;
}

export interface UplinkTransportEvents {
  connect: [];
  /** The connection ended (or the attempt failed); `reason` when the transport knows one. */
  close: [reason: string | null];
  /** An error on the connection; `code` is a short stable label (metric). A 'close' follows when fatal. */
  error: [err: Error, code: string];
  /** A message on a subscribed topic (collector → agent). */
  message: [topic: string, payload: Buffer];
}

export interface UplinkTransport {
  /** Reads credential and TLS files. A failure is a configuration error (EdgeflowError CONFIG_INVALID). Never connects. */
  init(): void;
  /** Starts one connection attempt to `url`, ending any previous connection. */
  connect(url: string): void;
  /** Ends the current connection at once (in-flight publishes fail); resolves when it is closed. */
  disconnect(): Promise<void>;
  publish(
    topic: string,
    payload: Buffer | string,
    opts: TransportPublishOptions,
    done: (err?: Error) => void,
  ): void;
  /** QoS 1 subscription on the current connection; rejects when refused or not connected. */
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  on<E extends keyof UplinkTransportEvents>(
    event: E,
    fn: (...args: UplinkTransportEvents[E]) => void,
  ): unknown;
}
