// The collector's Prometheus metrics (STYLE.md: telemetry is part of the contract). The registry comes
// in from outside, so two collectors can live in one process (tests) without name clashes.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { STAGE_LATENCY_BUCKETS } from '../shared/stage-latency.ts';

export type RejectReason =
  | 'no_credentials'
  | 'bad_username'
  | 'bad_password'
  | 'auth_throttled'
  | 'auth_busy'
  | 'cert_mismatch'
  | 'client_id_taken'
  | 'publish_acl'
  | 'subscribe_acl'
  | 'not_authenticated'
  | 'packet_too_large'
  | 'connection_limit'
  | 'protocol'
  | 'spool_error';

export function createCollectorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    registry,
    connectedAgents: new Gauge({
      name: 'edgeflow_collector_connected_agents',
      help: 'MQTT clients connected and authenticated',
      registers,
    }),
    connections: new Counter({
      name: 'edgeflow_collector_connections_total',
      help: 'TCP/TLS connections accepted',
      labelNames: ['listener'],
      registers,
    }),
    rejected: new Counter({
      name: 'edgeflow_collector_rejected_total',
      help: 'Connections, publishes and subscriptions refused, by reason',
      labelNames: ['reason'],
      registers,
    }),
    batches: new Counter({
      name: 'edgeflow_collector_batches_total',
      help: 'Uplink publishes accepted into the spool, by kind',
      labelNames: ['kind'],
      registers,
    }),
    items: new Counter({
      name: 'edgeflow_collector_items_total',
      help: 'Valid items received, by kind',
      labelNames: ['kind'],
      registers,
    }),
    deadLetters: new Counter({
      name: 'edgeflow_collector_deadletters_total',
      help: 'Payloads or items dead-lettered, by reason',
      labelNames: ['reason'],
      registers,
    }),
    statusCountersDropped: new Counter({
      name: 'edgeflow_collector_status_counters_dropped_total',
      help: 'Agent status counters dropped (over 256 per status or a name over 128 characters)',
      registers,
    }),
    dedupHits: new Counter({
      name: 'edgeflow_collector_dedup_hits_total',
      help: 'Items dropped as already received (agent, id, rev)',
      registers,
    }),
    backpressure: new Counter({
      name: 'edgeflow_collector_backpressure_waits_total',
      help: 'Publishes whose PUBACK was held because the spool was full',
      registers,
    }),
    spoolFull: new Gauge({
      name: 'edgeflow_collector_spool_full',
      help: '1 while the spool is at spool.maxBytes (PUBACKs held)',
      registers,
    }),
    spoolBytes: new Gauge({
      name: 'edgeflow_collector_spool_bytes',
      help: 'Bytes held in the spool',
      registers,
    }),
    spoolDepth: new Gauge({
      name: 'edgeflow_collector_spool_depth_items',
      help: 'Items in the spool not yet written by a sink',
      labelNames: ['sink'],
      registers,
    }),
    spoolAge: new Gauge({
      name: 'edgeflow_collector_spool_oldest_age_seconds',
      help: 'Age of the oldest item a sink has not yet written',
      labelNames: ['sink'],
      registers,
    }),
    sinkWritten: new Counter({
      name: 'edgeflow_collector_sink_written_total',
      help: 'Items a sink wrote (or skipped as not for it)',
      labelNames: ['sink'],
      registers,
    }),
    sinkErrors: new Counter({
      name: 'edgeflow_collector_sink_errors_total',
      help: 'Sink write failures, by code',
      labelNames: ['sink', 'code'],
      registers,
    }),
    sinkDropped: new Counter({
      name: 'edgeflow_collector_sink_dropped_total',
      help: 'Items lost: rejected permanently and the dead-letter write failed too',
      labelNames: ['sink'],
      registers,
    }),
    // Issue 19: where an item's time goes in the collector (the agent's
    // edgeflow_agent_delivery_stage_seconds covers the stages before).
    deliveryStage: new Histogram({
      name: 'edgeflow_collector_delivery_stage_seconds',
      help:
        'Delivery latency per stage, per uplink batch: spool_commit = PUBLISH authorised → committed to the spool (its PUBACK follows); ' +
        'sink_written = spooled → written by the sink (per sink write, its oldest item)',
      labelNames: ['stage', 'sink'],
      buckets: STAGE_LATENCY_BUCKETS,
      registers,
    }),
    sinkLatency: new Histogram({
      name: 'edgeflow_collector_sink_write_seconds',
      help: 'Duration of one sink write call',
      labelNames: ['sink'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    sinkUp: new Gauge({
      name: 'edgeflow_collector_sink_up',
      help: '1 if the last write or healthcheck of the sink succeeded',
      labelNames: ['sink'],
      registers,
    }),
  };
}

export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;
