// The uplink runner's options (the `uplink:` keys of agent.yaml map onto them: from-config.ts), its
// dependencies and the state it reports in /status. Defaults in brackets.
import type { Registry } from 'prom-client';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import type { Status } from '../../shared/model.ts';
import type { StageObserver } from '../../shared/stage-latency.ts';

export interface UplinkRunnerOptions {
  agentId: string;
  /** Tried in order; after a failure the next one, round robin, with backoff after each full round. */
  urls: readonly string[];
  batch?: {
    /** Items per batch. [500] */
    maxItems?: number;
    /** Longest an item waits for its batch to fill, ms (monotonic). Alerts never wait. [1000] */
    maxDelay?: number;
    /**
     * Send a partial batch at once when nothing is in flight (the link is idle); wait up to maxDelay
     * only while earlier batches await their PUBACK, i.e. under load (issue 19: Nagle's algorithm,
     * Kafka's linger.ms). false = every partial batch waits maxDelay. [true]
     */
    sendWhenIdle?: boolean;
  };
  /**
   * Upper bound on a batch's JSON size before compression, bytes; a batch is cut earlier when its items
   * would exceed it (one oversized item still goes alone). Keep it under the collector's mqtt.maxPacketSize. [524288]
   */
  maxBatchBytes?: number;
  /** Batches published and not yet acknowledged. [8] */
  maxInFlight?: number;
  /** Cap on items/s for summaries and late events (backlog drain); alerts are never throttled. [none] */
  drainRate?: number;
  /** gzip batches of at least `compressThreshold` bytes. ['none'] */
  compress?: 'gzip' | 'none';
  /** bytes [1024] */
  compressThreshold?: number;
  /** Retained status message period, ms; also sent on every connect. [10000] */
  statusInterval?: number;
  /** A connection attempt without CONNACK after this long fails over, ms. [10000] */
  connectTimeout?: number;
  /** Reconnect backoff, ms, exponential with full jitter. [500, 30000] */
  backoff?: { minMs?: number; maxMs?: number };
  /** How often the outbox is looked at when nothing else wakes the loop, ms. [100] */
  pollInterval?: number;
}

export interface UplinkRunnerDeps {
  /** The runtime's status object (shared/model.ts statusSchema). Without it no status is published. */
  getStatus?: () => Status;
  log?: Logger;
  clock?: Clock;
  /** Registers edgeflow_agent_uplink_* counters when given. */
  registry?: Registry;
  random?: () => number;
  /** Observes the uplink_queue and uplink_ack stages (the agent's edgeflow_agent_delivery_stage_seconds). */
  stageLatency?: StageObserver;
}

export interface UplinkState {
  connected: boolean;
  url: string | null;
  lastError: string | null;
  batchesSent: number;
  itemsSent: number;
  bytesSent: number;
  /** Batches published, not yet acknowledged. */
  inFlight: number;
  inFlightItems: number;
  reconnects: number;
  connectFailures: number;
  /** Items that were in flight when a connection dropped and became eligible to be sent again. */
  requeuedItems: number;
  statusSent: number;
}
