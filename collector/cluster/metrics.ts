// Prometheus metrics of cluster mode (STYLE.md: edgeflow_<component>_<thing>_total). The registry comes
// in from outside, so two forwarders can live in one process (tests).
import { Counter, Gauge, type Registry } from 'prom-client';

export function createForwarderMetrics(registry: Registry, target: 'kafka' | 'influx') {
  const registers = [registry];
  const p = target === 'kafka' ? 'edgeflow_forwarder' : 'edgeflow_influx_forwarder';
  return {
    records: new Counter({ name: `${p}_records_total`, help: 'Ingest records consumed', registers }),
    items: new Counter({
      name: `${p}_items_total`,
      help: 'Items written (Kafka: inside a committed transaction; InfluxDB: acknowledged write)',
      labelNames: ['kind'],
      registers,
    }),
    duplicates: new Counter({
      name: `${p}_duplicates_total`,
      help: 'Items dropped as re-sends of an (agent, id, rev) already forwarded',
      registers,
    }),
    dropped: new Counter({
      name: `${p}_dropped_total`,
      help: 'Items not written and not retried, by reason',
      labelNames: ['reason'],
      registers,
    }),
    commits: new Counter({
      name: `${p}_commits_total`,
      help: 'Kafka transactions (or InfluxDB offset commits) that succeeded',
      registers,
    }),
    errors: new Counter({
      name: `${p}_errors_total`,
      help: 'Failed attempts (retried), by code and stage',
      labelNames: ['code', 'stage'],
      registers,
    }),
    partitions: new Gauge({ name: `${p}_partitions`, help: 'Input partitions owned now', registers }),
    dedupKeys: new Gauge({ name: `${p}_dedup_keys`, help: 'Dedup keys held in memory', registers }),
  };
}

export type ForwarderMetrics = ReturnType<typeof createForwarderMetrics>;

export function createIngestNodeMetrics(registry: Registry) {
  const registers = [registry];
  return {
    produced: new Counter({
      name: 'edgeflow_collector_ingest_records_total',
      help: 'Records acknowledged by Kafka on the ingest topic',
      registers,
    }),
    produceErrors: new Counter({
      name: 'edgeflow_collector_ingest_produce_errors_total',
      help: 'Produce requests to the ingest topic that failed (the batches were not acknowledged)',
      labelNames: ['code'],
      registers,
    }),
    pendingBytes: new Gauge({
      name: 'edgeflow_collector_ingest_pending_bytes',
      help: 'Bytes of accepted batches waiting for Kafka to acknowledge them',
      registers,
    }),
  };
}
