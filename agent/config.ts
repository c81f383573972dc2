// The agent's configuration (SPEC.md section 2): one zod schema, validated once at start, every problem
// reported as `yaml.path: message` (check-config, exit 2), then frozen. Keys beyond the spec are
// extensions and documented in docs/agent-config.md.
import { z } from 'zod';
import { AGGREGATES } from '../shared/model.ts';
import { AGENT_ID_RE, AGENT_ID_RULE } from '../shared/topics.ts';
import { durationSchema, sizeSchema } from '../shared/units.ts';
import { DEFAULT_MIN_EVENT_TIME_MS } from './runtime/clock-guard.ts';
import { updateSchema } from './update/config.ts';

const nameRe = /^[a-zA-Z0-9._-]{1,64}$/;
const name = z.string().regex(nameRe, 'expected 1-64 characters of [a-zA-Z0-9._-]');
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]*):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464')
  // issue 12 item 3: `:70000` passed the pattern and crashed `run` with a RangeError
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');
const mqttUrl = z
  .string()
  .regex(
    /^(mqtts?|wss?|tcp|tls):\/\/[^\s]+$/,
    'expected an MQTT URL such as mqtt://host:1883 or mqtts://host:8883',
  );
const glob = z.string().min(1);
/** limits.minEventTime: a UTC date (`2000-01-01`, ISO 8601 with a zone) or epoch milliseconds. */
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_WITH_ZONE_RE = /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/;
const eventTimeFloor = z.union([z.string(), z.number()]).transform((v, ctx) => {
  let ms = Number.NaN;
  if (typeof v === 'number') ms = v;
  else if (DATE_RE.test(v)) ms = Date.parse(`${v}T00:00:00Z`);
  else if (ISO_WITH_ZONE_RE.test(v)) ms = Date.parse(v);
  if (!Number.isFinite(ms) || ms < 0) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a UTC date like 2000-01-01 (or ISO 8601 with a zone, or epoch ms)',
    });
    return z.NEVER;
  }
  return ms;
});
const match = z
  .object({ device: glob.default('*'), metric: glob.default('*') })
  .strict()
  .default({ device: '*', metric: '*' });
const tlsFiles = { ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() };
const topicPatternRe = /^[^#+]*(\{device\}|\{metric\})?[^#+]*$/;

const serialSource = z
  .object({
    type: z.literal('serial'),
    name,
    path: z.string().min(1),
    baudRate: z.number().int().positive().default(115200),
    dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
    parity: z.enum(['none', 'even', 'odd', 'mark', 'space']).default('none'),
    stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).default(1),
    format: z.enum(['json', 'csv', 'kv', 'senml']).default('json'),
    device: z.string().min(1).optional(),
    maxFrameLength: sizeSchema.default(4096),
  })
  .strict();

const mqttSource = z
  .object({
    type: z.literal('mqtt'),
    name,
    url: mqttUrl,
    topics: z.array(z.string().min(1)).min(1),
    topicPattern: z.string().regex(topicPatternRe, 'expected segments with {device} / {metric}').optional(),
    format: z.enum(['number', 'json', 'senml', 'csv', 'kv']).default('json'),
    qos: z.union([z.literal(0), z.literal(1)]).default(1),
    clientId: z.string().optional(),
    username: z.string().optional(),
    passwordFile: z.string().optional(),
    device: z.string().min(1).optional(),
    ...tlsFiles,
  })
  .strict();

const brokerSource = z
  .object({
    type: z.literal('mqtt-broker'),
    name: name.default('broker'),
    listen: hostPort,
    topicPattern: z.string().regex(topicPatternRe, 'expected segments with {device} / {metric}'),
    format: z.enum(['number', 'json', 'senml', 'csv', 'kv']).default('number'),
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
  .strict();

export const sourceSchema = z.discriminatedUnion('type', [serialSource, mqttSource, brokerSource]);

const WINDOW_SHAPE_KEYS = ['size', 'slide', 'gap', 'count'] as const;
type WindowShapeKey = (typeof WINDOW_SHAPE_KEYS)[number];

export const windowSchema = z
  .object({
    name,
    match,
    type: z.enum(['tumbling', 'hopping', 'session', 'count']),
    size: durationSchema.optional(),
    slide: durationSchema.optional(),
    gap: durationSchema.optional(),
    count: z.number().int().positive().optional(),
    aggregates: z
      .array(z.enum(AGGREGATES))
      .min(1)
      .default([...AGGREGATES]),
    allowedLateness: durationSchema.default(0),
    lateEvents: z.enum(['drop', 'forward']).default('drop'),
  })
  .strict()
  .superRefine((w, ctx) => {
    // Which shape keys each window type takes (SPEC.md section 2); the others must be absent.
    const shape: Record<typeof w.type, readonly WindowShapeKey[]> = {
      tumbling: ['size'],
      hopping: ['size', 'slide'],
      session: ['gap'],
      count: ['count'],
    };
    for (const key of WINDOW_SHAPE_KEYS) {
      const wanted = shape[w.type].includes(key);
      if (wanted && w[key] === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `required for ${w.type} windows` });
      }
      if (!wanted && w[key] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `not used by ${w.type} windows` });
      }
    }
    if (
      w.type === 'hopping' &&
      w.size !== undefined &&
      w.slide !== undefined &&
      (w.slide <= 0 || w.slide > w.size)
    ) {
      ctx.addIssue({ code: 'custom', path: ['slide'], message: 'expected 0 < slide <= size' });
    }
    if (w.size !== undefined && w.size <= 0)
      ctx.addIssue({ code: 'custom', path: ['size'], message: 'expected > 0' });
    if (w.gap !== undefined && w.gap <= 0)
      ctx.addIssue({ code: 'custom', path: ['gap'], message: 'expected > 0' });
  });

export const uplinkSchema = z
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
  .strict();

export function agentConfigSchema(ruleSchema: z.ZodType) {
  return z
    .object({
      agent: z
        .object({
          id: z.string().regex(AGENT_ID_RE, `expected ${AGENT_ID_RULE}`),
          dataDir: z.string().min(1),
        })
        .strict(),
      sources: z.array(sourceSchema).default([]),
      watermark: z
        .object({ maxOutOfOrder: durationSchema.default(5000), idleTimeout: durationSchema.default(30_000) })
        .strict()
        .default({ maxOutOfOrder: 5000, idleTimeout: 30_000 }),
      windows: z.array(windowSchema).default([]),
      rules: z.array(ruleSchema).default([]),
      uplink: uplinkSchema.optional(),
      buffer: z
        .object({
          maxBytes: sizeSchema.default(512 * 1024 ** 2),
          onFull: z.enum(['drop-oldest-summaries', 'reject-new']).default('drop-oldest-summaries'),
          synchronous: z.enum(['normal', 'full']).default('normal'),
        })
        .strict()
        .default({ maxBytes: 512 * 1024 ** 2, onFull: 'drop-oldest-summaries', synchronous: 'normal' }),
      checkpoint: z
        // Issue 19: emitted items (summaries, alerts, late events) are checkpointed as soon as they are
        // emitted, at most once per minInterval (group commit); `interval` bounds how long frames that
        // emitted nothing wait for theirs. minInterval >= interval = the timer-only checkpoint of before.
        .object({ interval: durationSchema.default(1000), minInterval: durationSchema.default(100) })
        .strict()
        .default({ interval: 1000, minInterval: 100 }),
      limits: z
        .object({
          maxKeys: z.number().int().positive().default(100_000),
          maxOpenWindows: z.number().int().positive().default(500_000),
          maxPendingFrames: z.number().int().positive().default(50_000),
          minEventTime: eventTimeFloor.default(DEFAULT_MIN_EVENT_TIME_MS),
        })
        .strict()
        .default({
          maxKeys: 100_000,
          maxOpenWindows: 500_000,
          maxPendingFrames: 50_000,
          minEventTime: DEFAULT_MIN_EVENT_TIME_MS,
        }),
      http: z
        .object({ listen: hostPort.default('127.0.0.1:9464') })
        .strict()
        .default({ listen: '127.0.0.1:9464' }),
      update: updateSchema.optional(), // issue 16: over-the-air updates (agent/update/config.ts)
    })
    .strict()
    .superRefine((cfg, ctx) => {
      const uniq = (list: { name?: string }[], key: string) => {
        const seen = new Set<string>();
        list.forEach((x, i) => {
          if (x.name === undefined) return;
          if (seen.has(x.name))
            ctx.addIssue({ code: 'custom', path: [key, i, 'name'], message: `duplicate name "${x.name}"` });
          seen.add(x.name);
        });
      };
      uniq(cfg.sources, 'sources');
      uniq(cfg.windows, 'windows');
      uniq(cfg.rules as { name?: string }[], 'rules');
      const windowNames = new Set(cfg.windows.map((w) => w.name));
      (cfg.rules as { on?: unknown }[]).forEach((r, i) => {
        const on = r.on;
        const win =
          typeof on === 'string' && on.startsWith('window:')
            ? on.slice(7)
            : typeof on === 'object' && on && 'window' in on
              ? String((on as { window: unknown }).window)
              : null;
        if (win !== null && !windowNames.has(win)) {
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'on'],
            message: `no window named "${win}" (windows: ${[...windowNames].join(', ') || 'none'})`,
          });
        }
      });
      cfg.sources.forEach((s, i) => {
        if ((s.type === 'mqtt' || s.type === 'mqtt-broker') && s.format === 'number') {
          if (!s.topicPattern?.includes('{metric}')) {
            ctx.addIssue({
              code: 'custom',
              path: ['sources', i, 'topicPattern'],
              message: 'format "number" needs a topicPattern with {metric} (and {device} or a source device)',
            });
          }
        }
        if (s.type === 'mqtt-broker') {
          const at = (key: string, message: string) =>
            ctx.addIssue({ code: 'custom', path: ['sources', i, key], message });
          const shared = s.username !== undefined || s.passwordFile !== undefined;
          if (shared && (s.username === undefined || s.passwordFile === undefined))
            at(
              s.username === undefined ? 'username' : 'passwordFile',
              'username and passwordFile go together',
            );
          if (shared && s.credentials !== undefined)
            at('credentials', 'use either credentials (per sensor) or username + passwordFile, not both');
          if (!shared && s.credentials === undefined && !s.allowAnonymous)
            at(
              'credentials',
              'sensors must log in: set credentials (a per-sensor file, see `edgeflow-agent add-sensor`) or username + passwordFile; allowAnonymous: true accepts anyone',
            );
        }
        if (s.type === 'mqtt' && s.passwordFile && !s.username) {
          ctx.addIssue({
            code: 'custom',
            path: ['sources', i, 'username'],
            message: 'required with passwordFile',
          });
        }
      });
      if (cfg.uplink?.passwordFile && !cfg.uplink.username) {
        ctx.addIssue({ code: 'custom', path: ['uplink', 'username'], message: 'required with passwordFile' });
      }
    });
}

export type SourceConfig = z.output<typeof sourceSchema>;
export type WindowConfig = z.output<typeof windowSchema>;
export type UplinkConfig = z.output<typeof uplinkSchema>;

export type AgentConfig = z.output<ReturnType<typeof agentConfigSchema>>;
