// The fleet control wire contract (issue 15): the collector's desired-state document for one agent,
// its signature, and what the agent reports back in its status. The collector publishes the document
// retained at QoS 1 on the agent's downlink (`edgeflow/v1/{agent}/down`, shared/topics.ts), so an agent
// that was offline gets the latest on reconnect; the agent verifies the signature against the public
// key pinned in its local config before anything else, and reports `fleet` in its status.
//
// Signing input: RFC 8785 (JCS) canonical JSON of the document without `sig`. JCS fixes key order,
// number and string forms, so signer and verifier never disagree about bytes; `canonicalize` is the
// reference implementation by one of the RFC's authors (small, no dependencies) — chosen over a
// hand-written sorted stringify that would silently differ on edge cases (-0, large numbers, escapes).
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { AGENT_ID_RE } from './topics.ts';

export const FLEET_DOC_KIND = 'desired';
const HASH_RE = /^sha256:[0-9a-f]{64}$/;

/** What the collector wants one agent to run. `config` is a partial agent config (top-level keys). */
export const desiredStateSchema = z.object({
  v: z.literal(1),
  kind: z.literal(FLEET_DOC_KIND),
  /** The agent this document is for: an agent refuses a document naming another (no cross-replay). */
  agent: z.string().regex(AGENT_ID_RE),
  /** Monotonic across the collector's rollouts; an agent refuses a version not above its applied one. */
  version: z.number().int().positive(),
  /** The rollout that produced it (for reports and `fleet status`). */
  rollout: z.string().min(1).max(128),
  /** `sha256:` + hex SHA-256 of the canonical JSON of `config`. */
  hash: z.string().regex(HASH_RE),
  issuedAt: z.number().int(),
  config: z.record(z.string(), z.unknown()),
  /** Reserved for agent updates (issue 16): the wanted agent release. */
  update: z.unknown().optional(),
  /** Which key signed it: first 16 hex of SHA-256 over the raw 32-byte ed25519 public key. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  /** base64 ed25519 signature over canonicalJson(document without `sig`). */
  sig: z.string().min(1),
});
export type DesiredState = z.infer<typeof desiredStateSchema>;
export type UnsignedDesiredState = Omit<DesiredState, 'sig' | 'keyId'>;

/**
 * The agent config key paths (dotted) a fleet document may set unless the agent's `fleet.allow` (and the
 * collector's `fleet.allowedKeys`) say otherwise: issue 15 capability 2, "sources, windows, rules,
 * watermark, batch and buffer policy", and the wanted agent release (issue 16), so a rollout carries an
 * update with the same canary and halt. One list for both ends: the collector refuses early what the
 * agent would refuse.
 */
export const DEFAULT_REMOTE_KEYS = [
  'sources',
  'windows',
  'rules',
  'watermark',
  'uplink.batch',
  'buffer',
  'update.version',
] as const;
/** Carved out of `update`, which is otherwise never remote (its key and URL pick the code that runs). */
export const REMOTE_EXCEPTIONS = ['update.version'] as const;

/**
 * Never settable remotely, whatever the allow lists say: the identity and the data directory (they pick
 * the outbox), the uplink's credentials and TLS (whoever sets them owns the agent), the `fleet` block
 * (the pinned key and the allow list would let a document widen its own powers), and the OTA `update`
 * block except the wanted release (REMOTE_EXCEPTIONS). The agent's floor; the collector adds to it.
 */
export const NEVER_REMOTE_KEYS = [
  'agent',
  'fleet',
  'update',
  'uplink.username',
  'uplink.passwordFile',
  'uplink.ca',
  'uplink.cert',
  'uplink.key',
  'uplink.rejectUnauthorized',
] as const;

/** `path` equals `prefix` or lies under it (dotted key paths). */
export const underPath = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}.`);

/** Under (or equal to) one of `never`, and not a carved-out exception. */
export function isNeverRemote(path: string, never: readonly string[] = NEVER_REMOTE_KEYS): boolean {
  if ((REMOTE_EXCEPTIONS as readonly string[]).includes(path)) return false;
  return never.some((n) => underPath(path, n));
}

export const FLEET_STATES = ['pending', 'applied', 'rejected', 'rolled_back'] as const;
export type FleetState = (typeof FLEET_STATES)[number];

/** The agent's report, carried as `fleet` in its status (shared/model.ts statusSchema). */
export const fleetReportSchema = z.object({
  /** The version/hash this report is about (the last document received). */
  version: z.number().int().min(0),
  hash: z.string(),
  rollout: z.string().optional(),
  /** pending: applying, health not yet confirmed; applied: healthy; rejected: never applied (bad
   *  signature, invalid config, key not allowed); rolled_back: applied, unhealthy, back on last-known-good. */
  state: z.enum(FLEET_STATES),
  reason: z.string().max(1024).optional(),
  /** When the state was reached, epoch ms. */
  at: z.number().int(),
  /** The configuration the agent runs when this is not `applied` (version 0 = its local file only). */
  lastKnownGood: z.object({ version: z.number().int().min(0), hash: z.string() }).optional(),
});
export type FleetReport = z.infer<typeof fleetReportSchema>;

/** Labels an agent reports (`fleet.labels` in its local config, agent/fleet/config.ts), used by fleet documents' selectors. */
export const labelsSchema = z.record(z.string().max(64), z.string().max(256));

export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new Error('canonicalJson: value has no JSON form');
  return s;
}

export function configHash(config: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(config)).digest('hex')}`;
}

/** Raw 32-byte public key of an ed25519 KeyObject (from its JWK form). */
function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('not an ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

export function keyIdOf(key: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(key)).digest('hex').slice(0, 16);
}

/** Reads an ed25519 key from PEM (PKCS#8 private / SPKI public). */
export function parsePrivateKey(pem: string | Buffer): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`expected an ed25519 private key, got ${key.asymmetricKeyType}`);
  return key;
}
export function parsePublicKey(pem: string | Buffer): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`expected an ed25519 public key, got ${key.asymmetricKeyType}`);
  return key;
}

export function signDesiredState(doc: UnsignedDesiredState, privateKey: KeyObject): DesiredState {
  const unsigned = { ...doc, keyId: keyIdOf(privateKey) };
  const sig = sign(null, Buffer.from(canonicalJson(unsigned)), privateKey).toString('base64');
  return { ...unsigned, sig };
}

export type VerifyResult = { ok: true; doc: DesiredState } | { ok: false; reason: string };

/**
 * Parses and verifies a downlink payload for `agentId` against the pinned key. The reasons are short,
 * stable strings an operator sees in the agent's report.
 */
export function verifyDesiredState(
  payload: Buffer | string,
  agentId: string,
  publicKey: KeyObject,
): VerifyResult {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString());
  } catch {
    return { ok: false, reason: 'malformed: not JSON' };
  }
  const parsed = desiredStateSchema.safeParse(raw);
  if (!parsed.success)
    return {
      ok: false,
      reason: `malformed: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
    };
  const doc = parsed.data;
  if (doc.agent !== agentId) return { ok: false, reason: `wrong agent: document is for ${doc.agent}` };
  if (doc.keyId !== keyIdOf(publicKey))
    return { ok: false, reason: `unknown key: signed by key ${doc.keyId}` };
  const { sig, ...unsigned } = doc;
  const good = verify(null, Buffer.from(canonicalJson(unsigned)), publicKey, Buffer.from(sig, 'base64'));
  if (!good) return { ok: false, reason: 'bad signature' };
  if (configHash(doc.config) !== doc.hash) return { ok: false, reason: 'hash mismatch' };
  return { ok: true, doc };
}
