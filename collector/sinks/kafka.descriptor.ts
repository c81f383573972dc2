// `kafka:` (SPEC.md 2b): the Kafka sink. Schema, capabilities and a factory that loads the sink (and its
// client library: @platformatic/kafka or kafkajs) only when the config has the key (issue 13/14).
import { z } from 'zod';
import type { Logger } from '../../shared/log.ts';
import { hostPort } from '../config-common.ts';
import type { SinkDescriptor } from './sink.ts';

const schema = z
  .object({
    brokers: z.array(hostPort).min(1),
    clientId: z.string().min(1).default('edgeflow-collector'),
    topics: z
      .object({
        summaries: z.string().min(1).default('edgeflow.summaries'),
        alerts: z.string().min(1).default('edgeflow.alerts'),
        status: z.string().min(1).default('edgeflow.status'),
        late: z.string().min(1).default('edgeflow.late'),
        deadletter: z.string().min(1).default('edgeflow.deadletter'),
      })
      .strict()
      .default({
        summaries: 'edgeflow.summaries',
        alerts: 'edgeflow.alerts',
        status: 'edgeflow.status',
        late: 'edgeflow.late',
        deadletter: 'edgeflow.deadletter',
      }),
    /** Extension: create missing topics at start (else only verify they exist). */
    createTopics: z.boolean().default(true),
    /**
     * Extension (issue 18): the Kafka client library behind the sink. Both produce the same records
     * (keys, headers, murmur2 partitions, idempotent); kafkajs is kept for a broker @platformatic/kafka
     * does not work with.
     */
    client: z.enum(['platformatic', 'kafkajs']).default('platformatic'),
    ssl: z.boolean().default(false),
    sasl: z
      .object({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
        username: z.string().min(1),
        password: z.string().optional(),
        passwordFile: z.string().min(1).optional(),
      })
      .strict()
      .refine((s) => (s.password === undefined) !== (s.passwordFile === undefined), {
        message: 'give exactly one of password or passwordFile',
      })
      .optional(),
  })
  .strict();

export type KafkaConfig = z.output<typeof schema>;

export const kafkaSink = {
  type: 'kafka',
  schema,
  summary: 'Kafka topics per item kind, idempotent producer, keys agent/device, dead-letter topic',
  capabilities: { deadLetter: true, idempotent: true },
  async create(cfg: KafkaConfig, log: Logger) {
    const { KafkaSink } = await import('./kafka.ts');
    return new KafkaSink(cfg, log);
  },
} as const satisfies SinkDescriptor<typeof schema>;
