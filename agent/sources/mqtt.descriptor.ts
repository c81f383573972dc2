// `type: mqtt` (SPEC.md 2): a subscription on an MQTT broker. Replayable at QoS 1: PUBACK leaves only
// once the frame's readings are in a checkpoint.
import { z } from 'zod';
import { lazily } from '../../shared/registry.ts';
import { mqttUrl, name, tlsFiles, topicPattern } from '../config-common.ts';
import { formatSchema } from '../decoders/registry.ts';
import type { SourceDescriptor } from './source.ts';

const schema = lazily(() =>
  z
    .object({
      type: z.literal('mqtt'),
      name,
      url: mqttUrl,
      topics: z.array(z.string().min(1)).min(1),
      topicPattern: topicPattern.optional(),
      format: formatSchema({ withTopics: true, default: 'json' }),
      qos: z.union([z.literal(0), z.literal(1)]).default(1),
      clientId: z.string().optional(),
      username: z.string().optional(),
      passwordFile: z.string().optional(),
      device: z.string().min(1).optional(),
      ...tlsFiles,
    })
    .strict()
    .superRefine((s, ctx) => {
      if (s.passwordFile && !s.username)
        ctx.addIssue({ code: 'custom', path: ['username'], message: 'required with passwordFile' });
    }),
);

export const mqttSource = {
  type: 'mqtt',
  get schema() {
    return schema();
  },
  summary: 'subscribes to topics on an MQTT broker',
  capabilities: { replayable: true, needsTty: false, topics: true, listens: false },
  async create(cfg, agentId, ctx) {
    const { MqttSource } = await import('./mqtt.ts');
    return new MqttSource({ ...cfg, agentId }, ctx);
  },
  files: (cfg) => [
    { key: 'passwordFile', path: cfg.passwordFile, kind: 'secret' },
    { key: 'ca', path: cfg.ca, kind: 'ca' },
    { key: 'cert', path: cfg.cert, kind: 'cert' },
    { key: 'key', path: cfg.key, kind: 'key' },
  ],
} as const satisfies SourceDescriptor<ReturnType<typeof schema>>;
