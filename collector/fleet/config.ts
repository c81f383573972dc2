// The collector's `fleet:` config block (issue 15, docs/fleet.md). Absent = fleet control off: nothing is
// published on any downlink and the admin routes answer 404.
import { z } from 'zod';
import {
  NEVER_REMOTE_KEYS as AGENT_NEVER_REMOTE,
  DEFAULT_REMOTE_KEYS,
  isNeverRemote as isNeverRemoteFor,
  REMOTE_EXCEPTIONS,
  underPath,
} from '../../shared/fleet.ts';
import { durationSchema } from '../../shared/units.ts';
import { hostPort } from '../config-common.ts';

/** What documents may set unless `fleet.allowedKeys` says otherwise: the agent's own default (shared/fleet.ts). */
export const DEFAULT_ALLOWED_KEYS = DEFAULT_REMOTE_KEYS;
/**
 * Never settable from the collector, whatever allowedKeys says: the agent's floor (shared/fleet.ts), plus
 * its listeners and where it sends (`http`, `uplink.urls`).
 */
export const NEVER_REMOTE_KEYS = [...AGENT_NEVER_REMOTE, 'http', 'uplink.urls'] as const;
const isNeverRemote = (path: string) => isNeverRemoteFor(path, NEVER_REMOTE_KEYS);

/** The key paths of `config` outside `allowed` (or never settable), shallowest first. */
export function disallowedPaths(config: Record<string, unknown>, allowed: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (path: string, value: unknown) => {
    const deeperRules = [...allowed, ...NEVER_REMOTE_KEYS, ...REMOTE_EXCEPTIONS].some((a) =>
      a.startsWith(`${path}.`),
    );
    const isObj = typeof value === 'object' && value !== null && !Array.isArray(value);
    // `update` is never remote but `update.version` is (issue 16): walk into it to reach the exception.
    const exceptionBelow = isObj && REMOTE_EXCEPTIONS.some((e) => e.startsWith(`${path}.`));
    if (isNeverRemote(path) && !exceptionBelow) return void out.push(path);
    if (
      allowed.some((a) => underPath(path, a)) &&
      !(isObj && NEVER_REMOTE_KEYS.some((n) => n.startsWith(`${path}.`)))
    )
      return;
    if (isObj && deeperRules) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(`${path}.${k}`, v);
      return;
    }
    out.push(path);
  };
  for (const [k, v] of Object.entries(config)) walk(k, v);
  return out;
}

const selectorSchema = z
  .object({
    /** Agent id globs (`*`, `?`); any one matching selects the agent. */
    agents: z.array(z.string().min(1)).optional(),
    /** Reported labels that must all match (values may be globs). */
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type Selector = z.output<typeof selectorSchema>;

const rolloutSchema = z
  .object({
    /** Share of a rollout's agents that get it first (0 = no canary stage), rounded up to >= 1 agent. */
    canaryShare: z.number().min(0).max(1).default(0.1),
    /** Or: these agents form the canary stage (overrides canaryShare when it selects any). */
    canary: selectorSchema.optional(),
    /** Halt when more than this share of the agents sent the rollout reject or roll back. */
    maxFailureShare: z.number().min(0).max(1).default(0.2),
    /**
     * A canary agent that goes offline after its stage was sent (restarting into a new release, a
     * reconnect) still holds the stage this long before the rollout goes on without its report.
     */
    offlineGrace: durationSchema.default(300_000),
  })
  .strict();

export const fleetConfigSchema = z
  .object({
    /** Directory of fleet YAML documents (groups and per-agent overrides), watched. */
    dir: z.string().min(1),
    /** ed25519 private key (PKCS#8 PEM) that signs every desired-state document. */
    signingKeyFile: z.string().min(1),
    /** Bearer token (a file holding it) for the admin API (`fleet apply|rollback|resume`) and the console. */
    adminTokenFile: z.string().min(1).optional(),
    /** A valid change in `dir` starts a rollout by itself (false: only `fleet apply` does). */
    autoApply: z.boolean().default(true),
    /** How long the directory must be quiet before it is re-read (editors write in several steps). */
    debounce: durationSchema.default(500),
    /** Dotted agent config key paths documents may set (`uplink.batch` allows only that subtree). */
    allowedKeys: z
      .array(
        z.string().regex(/^[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*)*$/, 'expected a dotted key path'),
      )
      .default([...DEFAULT_ALLOWED_KEYS]),
    rollout: rolloutSchema.default({ canaryShare: 0.1, maxFailureShare: 0.2, offlineGrace: 300_000 }),
    /** Agents whose last status is older than this are shown offline (besides the MQTT session). */
    staleAfter: durationSchema.default(120_000),
    console: z
      .object({
        enabled: z.boolean().default(false),
        listen: hostPort.default('127.0.0.1:9466'),
      })
      .strict()
      .default({ enabled: false, listen: '127.0.0.1:9466' }),
  })
  .strict()
  .superRefine((f, ctx) => {
    for (const [i, k] of f.allowedKeys.entries()) {
      if (isNeverRemote(k))
        ctx.addIssue({
          code: 'custom',
          path: ['allowedKeys', i],
          message: `"${k}" can never be set remotely (identity, listeners and credentials stay local)`,
        });
    }
    const host = f.console.listen.slice(0, f.console.listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost';
    if (f.console.enabled && !loopback && !f.adminTokenFile)
      ctx.addIssue({
        code: 'custom',
        path: ['console', 'listen'],
        message: 'a console listening beyond 127.0.0.1 needs fleet.adminTokenFile (token login)',
      });
  });
export type FleetConfig = z.output<typeof fleetConfigSchema>;
