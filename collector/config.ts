// Collector configuration (SPEC.md section 2b). Validated once at start against this schema, every
// problem reported as `yaml.path: message` (check-config, exit 2), then frozen. Objects are `.strict()`
// so a misspelt key is an error instead of a silently ignored setting.

import { z } from 'zod';
import { durationSchema, sizeSchema } from '../shared/units.ts';
import { artifactsSchema } from './artifacts/config.ts';
import { CLUSTER_DEFAULTS, clusterSchema } from './cluster/config.ts';
import { hostPort } from './config-common.ts';
import { fleetConfigSchema } from './fleet/config.ts';
import { sinkConfigShape } from './sinks/registry.ts';

/**
 * `tcp://host:port` or `tls://host:port` (also accepted: `mqtt://`, `mqtts://`); extension: MQTT over
 * WebSocket, `ws://host:port` or `wss://host:port` (TLS from mqtt.tls), for agents behind HTTP-only proxies.
 */
export const listenUrlSchema = z.string().transform((v, ctx) => {
  const m = /^(tcp|tls|mqtt|mqtts|ws|wss):\/\/(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : -1;
  if (!m || port > 65535) {
    ctx.addIssue({
      code: 'custom',
      message: `"${v}" is not a listen URL; expected tcp://host:port, tls://host:port, ws://host:port or wss://host:port`,
    });
    return z.NEVER;
  }
  const tls = m[1] === 'tls' || m[1] === 'mqtts' || m[1] === 'wss';
  const websocket = m[1] === 'ws' || m[1] === 'wss';
  return { url: v, tls, websocket, host: m[2]!.replace(/^\[|\]$/g, ''), port };
});
export type ListenUrl = z.output<typeof listenUrlSchema>;

const tlsSchema = z
  .object({
    cert: z.string().min(1),
    key: z.string().min(1),
    ca: z.string().min(1).optional(),
    requireClientCert: z.boolean().default(false),
  })
  .strict();

const mqttSchema = z
  .object({
    listen: z.array(listenUrlSchema).min(1).prefault(['tcp://0.0.0.0:1883']),
    tls: tlsSchema.optional(),
    credentials: z.string().min(1),
    maxPacketSize: sizeSchema.default(1024 * 1024),
    /**
     * Extension (issue 12, item 9): a batch's size once gunzipped, and its items, checked before the
     * JSON is parsed. The agent's batches are at most 512 KB before gzip (uplink maxBatchBytes), so 8x that.
     */
    maxBatchBytes: sizeSchema.default(4 * 1024 * 1024),
    maxBatchItems: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Extension: how long a connecting client may take to finish TLS and send CONNECT. */
    connectTimeout: durationSchema.default(10_000),
    /**
     * Extension (issue 12, item 10): memory before login. The largest packet accepted before the client
     * is authenticated (checked on the fixed header, before the body is buffered), connections open in
     * all, and connections open that have not logged in yet.
     */
    preAuthMaxPacketSize: sizeSchema.default(16 * 1024),
    maxConnections: z.number().int().min(1).default(10_000),
    maxPendingConnections: z.number().int().min(1).default(1000),
    /** Extension: limits on password checks (broker/auth-limits.ts). */
    authLimits: z
      .object({
        failuresPerAgent: z.number().int().min(1).default(5),
        failuresPerAddress: z.number().int().min(1).default(20),
        window: durationSchema.default(60_000),
        concurrentChecks: z.number().int().min(1).max(64).default(2),
        queuedChecks: z.number().int().min(0).default(5000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((m, ctx) => {
    m.listen.forEach((l, i) => {
      if (l.tls && !m.tls) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen', i],
          message: `${l.url} needs mqtt.tls (cert and key)`,
        });
      }
    });
    if (m.tls?.requireClientCert && !m.tls.ca) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', 'ca'],
        message: 'requireClientCert needs a ca to verify client certificates',
      });
    }
    if (m.preAuthMaxPacketSize < 256 || m.preAuthMaxPacketSize > m.maxPacketSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['preAuthMaxPacketSize'],
        message: 'expected between 256B and maxPacketSize',
      });
    }
    if (m.maxPendingConnections > m.maxConnections) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxPendingConnections'],
        message: 'expected at most maxConnections',
      });
    }
    if (m.maxPacketSize < 1024 || m.maxPacketSize > 256 * 1024 * 1024) {
      ctx.addIssue({ code: 'custom', path: ['maxPacketSize'], message: 'expected between 1KB and 256MB' });
    }
  });

const spoolSchema = z
  .object({
    maxBytes: sizeSchema.default(2 * 1024 ** 3),
    /** Extension: dedup index entries are kept this long ... */
    dedupRetention: durationSchema.default(7 * 86_400_000),
    /** ... and at most this many (oldest pruned first). */
    dedupMaxRows: z.number().int().min(1000).default(5_000_000),
  })
  .strict();

export const collectorConfigSchema = z
  .object({
    collector: z
      .object({
        id: z
          .string()
          .regex(/^[a-zA-Z0-9._-]{1,64}$/, 'expected [a-zA-Z0-9._-]{1,64}')
          .default('collector'),
        dataDir: z.string().min(1),
        /**
         * Extension: each sink (its client library's encoding and I/O) runs on its own worker thread,
         * so the MQTT/ingest/spool thread keeps its core (docs/design/collector.md). false = all on one.
         */
        sinkThreads: z.boolean().default(true),
        /** Extension (issue 17): `cluster` = stateless ingest node producing to Kafka (docs/cluster.md). */
        mode: z.enum(['single', 'cluster']).default('single'),
      })
      .strict(),
    mqtt: mqttSchema,
    // One optional key per sink kind (collector/sinks/registry.ts): `kafka:`, `influx:`.
    ...sinkConfigShape(),
    spool: spoolSchema.default({
      maxBytes: 2 * 1024 ** 3,
      dedupRetention: 7 * 86_400_000,
      dedupMaxRows: 5_000_000,
    }),
    http: z
      .object({
        listen: hostPort.default('127.0.0.1:9465'),
        /**
         * Extension (issue 16): serve this listener (/metrics, /status, /fleet, /releases) and the fleet
         * console over HTTPS with this certificate and key (PEM files; the ones of mqtt.tls do).
         */
        tls: z
          .object({ cert: z.string().min(1), key: z.string().min(1) })
          .strict()
          .optional(),
      })
      .strict()
      .default({ listen: '127.0.0.1:9465' }),
    cluster: clusterSchema.default(CLUSTER_DEFAULTS),
    /** Extension (issue 15): fleet control, docs/fleet.md. Absent = off. */
    fleet: fleetConfigSchema.optional(),
    artifacts: artifactsSchema.optional(), // issue 16: releases served to agents (collector/artifacts)
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.collector.mode === 'cluster' && !c.kafka) {
      ctx.addIssue({ code: 'custom', path: ['kafka'], message: 'collector.mode: cluster needs kafka' });
    }
  });

export type CollectorConfig = z.output<typeof collectorConfigSchema>;
export type { InfluxConfig } from './sinks/influxdb.descriptor.ts';
export type { KafkaConfig } from './sinks/kafka.descriptor.ts';

export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(hp.slice(i + 1)) };
}
