// `influx:` (SPEC.md 2b): the InfluxDB sink (v1 or v2 API). Schema, capabilities and a factory that
// loads the sink and its client only when the config has the key (issue 13/14).
import { z } from 'zod';
import type { Logger } from '../../shared/log.ts';
import { durationSchema } from '../../shared/units.ts';
import type { SinkDescriptor } from './sink.ts';

const schema = z
  .object({
    url: z.url(),
    api: z.enum(['v1', 'v2']).default('v2'),
    org: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    db: z.string().min(1).optional(),
    rp: z.string().min(1).optional(),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    /** Extension: items per write request. */
    batchSize: z.number().int().min(1).max(50_000).default(5000),
    timeout: durationSchema.default(10_000),
  })
  .strict()
  .superRefine((c, ctx) => {
    const need = (key: keyof typeof c, why: string) => {
      if (c[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `required for ${why}` });
    };
    const forbid = (keys: (keyof typeof c)[], why: string) => {
      for (const k of keys) {
        if (c[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `not used with ${why}` });
      }
    };
    if (c.api === 'v2') {
      need('org', 'api: v2');
      need('bucket', 'api: v2');
      if (c.token === undefined && c.tokenFile === undefined) {
        ctx.addIssue({ code: 'custom', path: ['tokenFile'], message: 'api: v2 needs token or tokenFile' });
      }
      forbid(['db', 'rp', 'username', 'password', 'passwordFile'], 'api: v2 (those are v1 settings)');
    } else {
      need('db', 'api: v1');
      forbid(['org', 'bucket', 'token', 'tokenFile'], 'api: v1 (those are v2 settings)');
      if (c.password !== undefined && c.passwordFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['passwordFile'],
          message: 'give only one of password or passwordFile',
        });
      }
    }
  });

export type InfluxConfig = z.output<typeof schema>;

export const influxSink = {
  type: 'influx',
  schema,
  summary: 'InfluxDB line protocol, v1 (db/rp) or v2 (org/bucket) API',
  capabilities: { deadLetter: false, idempotent: true },
  async create(cfg: InfluxConfig, log: Logger) {
    const { InfluxSink } = await import('./influxdb.ts');
    return new InfluxSink(cfg, log);
  },
} as const satisfies SinkDescriptor<typeof schema>;
