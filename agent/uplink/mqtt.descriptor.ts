// `uplink:` over MQTT to the collector (SPEC.md 4), today the only transport. Its schema lives here,
// beside the transport, and agent/uplink/registry.ts lists it (issue 13): a second transport is its
// own descriptor and one registry line.
import { z } from 'zod';
import type { Descriptor } from '../../shared/registry.ts';
import { durationSchema } from '../../shared/units.ts';
import { mqttUrl, tlsFiles } from '../config-common.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { MqttUplink, MqttUplinkDeps } from './mqtt-uplink.ts';

const schema = z
  .object({
    urls: z.array(mqttUrl).min(1),
    username: z.string().optional(),
    passwordFile: z.string().optional(),
    ...tlsFiles,
    rejectUnauthorized: z.boolean().default(true),
    batch: z
      .object({
        maxItems: z.number().int().min(1).max(50_000).default(500),
        maxDelay: durationSchema.default(1000),
        // Issue 19: a partial batch leaves at once while nothing is in flight (Kafka's linger.ms only
        // under load); false = every partial batch waits maxDelay (the behaviour before issue 19).
        sendWhenIdle: z.boolean().default(true),
      })
      .strict()
      .default({ maxItems: 500, maxDelay: 1000, sendWhenIdle: true }),
    maxInFlight: z.number().int().min(1).max(64).default(8),
    drainRate: z.number().positive().optional(),
    compress: z.enum(['none', 'gzip']).default('none'),
    statusInterval: durationSchema.default(10_000),
  })
  .strict()
  .superRefine((u, ctx) => {
    if (u.passwordFile && !u.username)
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'required with passwordFile' });
  });

export type UplinkConfig = z.output<typeof schema>;

/** An uplink transport: drains the outbox to the collector. */
export interface UplinkDescriptor<S extends z.ZodObject = z.ZodObject> extends Descriptor {
  readonly schema: S;
  readonly summary: string;
  readonly capabilities: {
    /** Several collector URLs, tried in turn (failover). */
    readonly failover: boolean;
    /** Publishes the agent's status (retained) besides the items. */
    readonly status: boolean;
  };
  create(cfg: z.output<S>, agentId: string, outbox: Outbox, deps: MqttUplinkDeps): Promise<MqttUplink>;
}

export const mqttUplink = {
  type: 'mqtt',
  schema,
  summary: 'MQTT (QoS 1) to the collector, batches gzip-able, failover across urls',
  capabilities: { failover: true, status: true },
  async create(cfg, agentId, outbox, deps) {
    const { MqttUplink } = await import('./mqtt-uplink.ts');
    return new MqttUplink({ ...cfg, agentId }, outbox, deps);
  },
} as const satisfies UplinkDescriptor<typeof schema>;
