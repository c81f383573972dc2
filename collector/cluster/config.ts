// Cluster mode settings (issue 17, docs/design/cluster.md): `collector.mode: cluster` turns `run` into a
// stateless ingest node; `edgeflow-collector forward` reads the same file. Kept apart from config.ts so
// the single-node schema stays as it was (only `collector.mode` and the optional `cluster:` block are new).
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';

export const clusterSchema = z
  .object({
    /** The ingest topic: one record per accepted uplink batch, keyed by agent id. */
    ingestTopic: z.string().min(1).default('edgeflow.ingest'),
    /** Partitions when the collector creates the ingest topic (and its dedup changelog). */
    partitions: z.number().int().min(1).max(10_000).default(6),
    /** Replication factor for topics the collector creates; -1 = the broker's default. */
    replicationFactor: z.number().int().min(-1).max(16).default(-1),
    /** Consumer group of the Kafka forwarders (also the prefix of their transactional ids). */
    forwarderGroup: z.string().min(1).default('edgeflow-forwarder'),
    /** Consumer group of the InfluxDB forwarders. */
    influxGroup: z.string().min(1).default('edgeflow-forwarder-influx'),
    /**
     * Dedup keys remembered per agent (the window's bound, docs/design/cluster.md "Dedup state"): must
     * exceed 2 × the agents' uplink.maxInFlight × uplink.batch.maxItems (2 × 8 × 500 = 8000 by default).
     */
    dedupPerAgent: z.number().int().min(100).max(1_000_000).default(10_000),
    /**
     * Forwarder group session timeout: how long a dead forwarder keeps its partitions (and blocks
     * read_committed readers behind its open transaction) before the group moves them.
     */
    sessionTimeout: durationSchema.default(15_000),
    /** How long an ingest node waits for Kafka to acknowledge a batch before it refuses the PUBACK. */
    produceTimeout: durationSchema.default(10_000),
    /** Bytes of uplink batches an ingest node holds while Kafka acknowledges (back-pressure beyond). */
    maxPendingBytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(64 * 1024 * 1024),
  })
  .strict();

export type ClusterConfig = z.output<typeof clusterSchema>;

export const CLUSTER_DEFAULTS: ClusterConfig = clusterSchema.parse({});
