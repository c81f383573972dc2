// `type: mqtt-broker`: an MQTT broker embedded in the agent (aedes) that sensors publish to. Replayable
// (QoS 1 PUBACK after the checkpoint, as the mqtt source); listens, so sensors must log in by default.
import { z } from 'zod';
import { lazily } from '../../shared/registry.ts';
import { sizeSchema } from '../../shared/units.ts';
import { hostPort, name, topicPattern } from '../config-common.ts';
import { formatSchema } from '../decoders/registry.ts';
import type { SourceDescriptor } from './source.ts';

const schema = lazily(() =>
  z
    .object({
      type: z.literal('mqtt-broker'),
      name: name.default('broker'),
      listen: hostPort,
      topicPattern,
      format: formatSchema({ withTopics: true, default: 'number' }),
      // Sensor credentials (issue 12 item 1, docs/agent-config.md): a per-sensor file, or one shared
      // username + passwordFile; none of them only with allowAnonymous: true.
      credentials: z.string().min(1).optional(),
      username: z.string().min(1).optional(),
      passwordFile: z.string().min(1).optional(),
      allowAnonymous: z.boolean().default(false),
      maxPacketSize: sizeSchema
        .pipe(
          z
            .number()
            .int()
            .min(1024)
            .max(16 * 1024 ** 2),
        )
        .default(64 * 1024),
      maxConnections: z.number().int().min(1).max(10_000).default(64),
    })
    .strict()
    .superRefine((s, ctx) => {
      const at = (key: string, message: string) => ctx.addIssue({ code: 'custom', path: [key], message });
      const shared = s.username !== undefined || s.passwordFile !== undefined;
      if (shared && (s.username === undefined || s.passwordFile === undefined))
        at(s.username === undefined ? 'username' : 'passwordFile', 'username and passwordFile go together');
      if (shared && s.credentials !== undefined)
        at('credentials', 'use either credentials (per sensor) or username + passwordFile, not both');
      if (!shared && s.credentials === undefined && !s.allowAnonymous)
        at(
          'credentials',
          'sensors must log in: set credentials (a per-sensor file, see `edgeflow-agent add-sensor`) or username + passwordFile; allowAnonymous: true accepts anyone',
        );
    }),
);

export const mqttBrokerSource = {
  type: 'mqtt-broker',
  get schema() {
    return schema();
  },
  summary: 'an MQTT broker embedded in the agent, for sensors that publish',
  capabilities: { replayable: true, needsTty: false, topics: true, listens: true },
  async create(cfg, _agentId, ctx) {
    const { MqttBrokerSource } = await import('./mqtt-broker.ts');
    return new MqttBrokerSource(cfg, ctx);
  },
  files: (cfg) => [
    { key: 'passwordFile', path: cfg.passwordFile, kind: 'secret' },
    { key: 'credentials', path: cfg.credentials, kind: 'credentials' },
  ],
} as const satisfies SourceDescriptor<ReturnType<typeof schema>>;
