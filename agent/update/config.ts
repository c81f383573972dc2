// `update:` in the agent config (issue 16, docs/updates.md): over-the-air updates of the agent itself.
// Absent: the agent never downloads or swaps anything.
import { z } from 'zod';
import { RELEASE_VERSION_RE } from '../../shared/release.ts';
import { durationSchema, sizeSchema } from '../../shared/units.ts';

export const UPDATE_DEFAULTS = {
  budgetBytes: 512 * 1024 ** 2,
  healthDeadline: 120_000,
  retryInterval: 300_000,
};

export const updateSchema = z
  .object({
    /** The release public key (SPKI PEM, ed25519): a manifest signed by anything else is refused. */
    publicKeyFile: z.string().min(1),
    /** The collector's HTTP(S) base URL; releases are under /releases/. */
    url: z.string().regex(/^https?:\/\/[^\s]+$/, 'expected an http:// or https:// URL'),
    /**
     * CA (PEM file) that signs the collector's HTTPS certificate (its `http.tls`). Default: `uplink.ca`
     * (one fleet CA for both), else the system's CAs.
     */
    ca: z.string().min(1).optional(),
    /** The release this agent should run (fleet desired state may set it); absent: stay. */
    version: z.string().regex(RELEASE_VERSION_RE, 'expected a release version such as 1.4.0').optional(),
    /** Bytes the agent may download for one wanted version, retries and resumes included. */
    budgetBytes: sizeSchema.default(UPDATE_DEFAULTS.budgetBytes),
    /** Download cap in bytes per second (a shared cellular link); absent: no cap. */
    bandwidth: sizeSchema.optional(),
    /** How long a new binary has to become healthy (sources open, uplink connected, a checkpoint). */
    healthDeadline: durationSchema.default(UPDATE_DEFAULTS.healthDeadline),
    /** Wait after a failed download before trying again. */
    retryInterval: durationSchema.default(UPDATE_DEFAULTS.retryInterval),
    /**
     * The installed executable that is swapped (its directory must be writable by the agent, same file
     * system for the rename). Default: the running executable (the single-executable agent).
     */
    binary: z.string().min(1).optional(),
    /** Credentials for the download; default: the uplink's (the collector checks the same store). */
    username: z.string().optional(),
    passwordFile: z.string().optional(),
  })
  .strict();
export type UpdateConfig = z.output<typeof updateSchema>;

/**
 * Without `update:` a single-executable agent still finishes an interrupted swap and confirms (or rolls
 * back) a release installed by hand (`edgeflow-agent install-release`); it downloads nothing.
 */
export function localOnlyUpdateConfig(): UpdateConfig {
  return {
    publicKeyFile: '',
    url: '',
    budgetBytes: UPDATE_DEFAULTS.budgetBytes,
    healthDeadline: UPDATE_DEFAULTS.healthDeadline,
    retryInterval: UPDATE_DEFAULTS.retryInterval,
  };
}
