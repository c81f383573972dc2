// Deterministic ids (SPEC.md section 3): the same agent/window/device/metric/start always gives the
// same summary id, so a re-sent or re-emitted (rev+1) summary is recognised downstream.
import * as crypto from 'node:crypto';

// One-shot crypto.hash (Node >= 20.12/21.7) computes the same SHA-256 without a Hash object per id:
// one id per emitted window and alert (issue 14). createHash where it is missing (engines >= 20.11).
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
const sha256hex: (s: string) => string =
  oneShot !== undefined
    ? (s) => oneShot('sha256', s, 'hex')
    : (s) => crypto.createHash('sha256').update(s).digest('hex');

function digest(parts: readonly (string | number)[]): string {
  // JSON array encoding keeps parts unambiguous ("a|b","c" vs "a","b|c").
  return sha256hex(JSON.stringify(parts)).slice(0, 32);
}

export function summaryId(
  agent: string,
  window: string,
  device: string,
  metric: string,
  start: number,
): string {
  return digest(['s', agent, window, device, metric, start]);
}

/** One alert transition (firing or resolved) of one rule episode, identified by when it began. */
export function alertId(
  agent: string,
  rule: string,
  device: string,
  metric: string,
  episodeStart: number,
  state: 'firing' | 'resolved',
): string {
  return digest(['a', agent, rule, device, metric, episodeStart, state]);
}

/** Raw late event forwarded upstream instead of being dropped. */
export function lateEventId(
  agent: string,
  source: string,
  device: string,
  metric: string,
  ts: number,
  seq: number,
): string {
  return digest(['l', agent, source, device, metric, ts, seq]);
}

/** Batch ids only need to be unique; a re-sent batch keeps its id (the outbox stores it). */
export function newBatchId(agent: string): string {
  return `${agent}-${Date.now().toString(36)}-${crypto.randomBytes(6).toString('hex')}`;
}
