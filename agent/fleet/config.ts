// The agent's local `fleet` block (issue 15, docs/fleet-agent.md): the pinned collector key, which
// config keys a signed desired-state document may set, the health deadline, and the labels the agent
// reports. The block itself is local only: no document can change it (NEVER_REMOTE below).
import { z } from 'zod';
import {
  DEFAULT_REMOTE_KEYS,
  isNeverRemote,
  labelsSchema,
  NEVER_REMOTE_KEYS,
  REMOTE_EXCEPTIONS,
} from '../../shared/fleet.ts';
import { durationSchema } from '../../shared/units.ts';

/** What a document may set when `fleet.allow` is not given (shared with the collector, shared/fleet.ts). */
export const DEFAULT_ALLOW = DEFAULT_REMOTE_KEYS;

/** Never settable remotely, whatever `fleet.allow` says (shared/fleet.ts NEVER_REMOTE_KEYS). */
export { isNeverRemote, NEVER_REMOTE_KEYS as NEVER_REMOTE, REMOTE_EXCEPTIONS };

/**
 * Keys that name a secret or a TLS file, at any depth inside an allowed subtree (a source's
 * `passwordFile`, `credentials`, `ca`...): a document may not point the agent at another file (it could
 * make it read any file or trust another CA). It may repeat the local value of the same named item.
 */
export const SECRET_KEYS = new Set([
  'username',
  'password',
  'passwordFile',
  'credentials',
  'ca',
  'cert',
  'key',
]);

const keyPath = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*)*$/, 'expected a dotted key path');

export const fleetConfigSchema = z
  .object({
    /** PEM (SPKI) ed25519 public key of the collector's fleet signing key: the only key accepted. */
    publicKeyFile: z.string().min(1),
    allow: z
      .array(keyPath)
      .default([...DEFAULT_ALLOW])
      .superRefine((list, ctx) => {
        list.forEach((p, i) => {
          if (isNeverRemote(p))
            ctx.addIssue({ code: 'custom', path: [i], message: `${p} can never be set remotely` });
        });
      }),
    /** How long a pushed configuration has to become healthy (sources up, uplink connected). [60s] */
    healthDeadline: durationSchema.pipe(z.number().min(1000, 'expected at least 1s')).default(60_000),
    /**
     * Restarts a pushed configuration gets when the process died while it was pending, before the
     * agent gives up and starts on the last-known-good. [0: the first death rolls back]
     */
    crashRetries: z.number().int().min(0).max(10).default(0),
    /** Reported in status (`labels`); the collector's group selectors match them. */
    labels: labelsSchema.default({}),
  })
  .strict();

export type FleetConfig = z.output<typeof fleetConfigSchema>;
