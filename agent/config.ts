// The agent's configuration (SPEC.md section 2): one zod schema, validated once at start, every problem
// reported as `yaml.path: message` (check-config, exit 2), then frozen. Keys beyond the spec are
// extensions and documented in docs/agent-config.md.
import { z } from 'zod';
import { builtFrom, oneOf } from '../shared/registry.ts';
import { AGENT_ID_RE, AGENT_ID_RULE } from '../shared/topics.ts';
import { durationSchema, sizeSchema } from '../shared/units.ts';
import { hostPort, name } from './config-common.ts';
import { decoders } from './decoders/registry.ts';
import { fleetConfigSchema } from './fleet/config.ts';
import { ruleKinds } from './rules/registry.ts';
import { ruleSpecSchema } from './rules/schema.ts';
import { DEFAULT_MIN_EVENT_TIME_MS } from './runtime/clock-guard.ts';
import { type SourceConfig, sourceSchema, sources } from './sources/registry.ts';
import { updateSchema } from './update/config.ts';
import { defaultUplink } from './uplink/registry.ts';
import { aggregates, windowTypes } from './windows/registry.ts';
import { WINDOW_SHAPE_KEYS } from './windows/window.ts';

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
/** One entry of `windows:` (built from the window-type and aggregate registries). */
export const windowSchema = () =>
  z
    .object({
      name,
      match,
      type: oneOf(windowTypes),
      size: durationSchema.optional(),
      slide: durationSchema.optional(),
      gap: durationSchema.optional(),
      count: z.number().int().positive().optional(),
      aggregates: z.array(oneOf(aggregates)).min(1).default(aggregates.names()),
      allowedLateness: durationSchema.default(0),
      lateEvents: z.enum(['drop', 'forward']).default('drop'),
    })
    .strict()
    .superRefine((w, ctx) => {
      if (!windowTypes.has(w.type)) return;
      // Which shape keys each window type takes (SPEC.md section 2); the others must be absent.
      const t = windowTypes.get(w.type);
      const problem = (key: string, message: string) =>
        ctx.addIssue({ code: 'custom', path: [key], message });
      for (const key of WINDOW_SHAPE_KEYS) {
        const wanted = t.keys.includes(key);
        if (wanted && w[key] === undefined) problem(key, `required for ${w.type} windows`);
        if (!wanted && w[key] !== undefined) problem(key, `not used by ${w.type} windows`);
      }
      t.check?.(w, problem);
      if (w.size !== undefined && w.size <= 0) problem('size', 'expected > 0');
      if (w.gap !== undefined && w.gap <= 0) problem('gap', 'expected > 0');
    });

/**
 * The agent config schema, built from the registries of sources, decoders, window types, aggregates
 * and rule kinds (issue 13), and rebuilt if a kind is registered later (a test, an embedder).
 */
export const agentConfigSchema = builtFrom([sources, decoders, windowTypes, aggregates, ruleKinds], () =>
  z
    .object({
      agent: z
        .object({
          id: z.string().regex(AGENT_ID_RE, `expected ${AGENT_ID_RULE}`),
          dataDir: z.string().min(1),
        })
        .strict(),
      sources: z.array(sourceSchema()).default([]),
      watermark: z
        .object({ maxOutOfOrder: durationSchema.default(5000), idleTimeout: durationSchema.default(30_000) })
        .strict()
        .default({ maxOutOfOrder: 5000, idleTimeout: 30_000 }),
      windows: z.array(windowSchema()).default([]),
      rules: z.array(ruleSpecSchema()).default([]),
      uplink: defaultUplink.schema.optional(),
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
      // Issue 15: fleet control (agent/fleet/config.ts); absent = no downlink, local config only.
      fleet: fleetConfigSchema.optional(),
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
      uniq(cfg.rules, 'rules');
      const windowNames = new Set(cfg.windows.map((w) => w.name));
      cfg.rules.forEach((r, i) => {
        if (r.on !== 'reading' && !windowNames.has(r.on.window)) {
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'on'],
            message: `no window named "${r.on.window}" (windows: ${[...windowNames].join(', ') || 'none'})`,
          });
        }
      });
      cfg.sources.forEach((s: SourceConfig, i) => {
        // A format that takes the metric from the topic needs a pattern that names it.
        const format = decoders.has(s.format) ? decoders.get(s.format) : undefined;
        if (
          format?.capabilities.needsTopicMetric &&
          !('topicPattern' in s && s.topicPattern?.includes('{metric}'))
        ) {
          ctx.addIssue({
            code: 'custom',
            path: ['sources', i, 'topicPattern'],
            message: `format "${s.format}" needs a topicPattern with {metric} (and {device} or a source device)`,
          });
        }
      });
    }),
);

export { sourceSchema } from './sources/registry.ts';
/** `uplink:` (its transport's schema, agent/uplink/mqtt.descriptor.ts). */
export const uplinkSchema = defaultUplink.schema;
export type { SourceConfig } from './sources/registry.ts';
export type { UplinkConfig } from './uplink/mqtt.descriptor.ts';
export type WindowConfig = z.output<ReturnType<typeof windowSchema>>;
export type AgentConfig = z.output<ReturnType<typeof agentConfigSchema>>;
