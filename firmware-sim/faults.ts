// Fault injection on the wire (SPEC.md section 6): malformed frames, late (held back) frames and
// duplicates. All decisions come from one seeded stream, so a seed reproduces the faults as well.
import { encode, type Format, type FrameContent } from './formats.ts';
import { pick, type Rng, streamFor, uniform } from './prng.ts';

/**
 * How a frame is corrupted. Each variant is built so that no decoder of SPEC.md section 2 can read a
 * reading out of it (a "frame that does not parse"):
 *   truncated      the line is cut short (a proper prefix of the JSON; csv/kv cut before any value)
 *   garbage        4-32 bytes >= 0x80 starting with 0xFF, never valid UTF-8, no newline, comma or '='
 *   not_a_number   every value replaced by a token such as "n/a" or "NaN"
 *   missing_field  every value left out (json without value, csv with two fields, kv with only ts,
 *                  senml records without v, an empty number payload)
 */
export const MALFORMED_KINDS = ['truncated', 'garbage', 'not_a_number', 'missing_field'] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

const NOT_NUMBERS = ['n/a', 'ERR', 'NaN', '--'] as const;

function garbage(rng: Rng): Buffer {
  const b = Buffer.alloc(4 + Math.floor(rng() * 29));
  b[0] = 0xff;
  for (let i = 1; i < b.length; i++) b[i] = 0x80 + Math.floor(rng() * 0x80);
  return b;
}

/** Builds the malformed payload of `kind` for a frame that would have carried `c`. */
export function malformedPayload(
  format: Format,
  c: FrameContent,
  kind: MalformedKind,
  rng: Rng,
): string | Buffer {
  const first = c.values[0];
  if (!first) throw new RangeError('a frame needs at least one value');
  switch (kind) {
    case 'garbage':
      return garbage(rng);
    case 'truncated': {
      if (format === 'json' || format === 'senml') {
        const s = encode(format, c);
        return s.slice(0, 1 + Math.floor(rng() * (s.length - 1))); // never the whole text
      }
      if (format === 'csv') {
        const head = `${c.device},${first[0]}`; // cut before the value field starts
        return head.slice(0, 1 + Math.floor(rng() * head.length));
      }
      if (format === 'kv') return first[0].slice(0, 1 + Math.floor(rng() * first[0].length)); // no '='
      return garbage(rng); // a prefix of a number is still a number
    }
    case 'not_a_number': {
      const token = pick(rng, NOT_NUMBERS);
      switch (format) {
        case 'json':
          if (c.values.length === 1)
            return JSON.stringify({ device: c.device, metric: first[0], value: token, ts: c.ts });
          return JSON.stringify({
            device: c.device,
            ts: c.ts,
            ...Object.fromEntries(c.values.map(([m]) => [m, token])),
          });
        case 'csv':
          return `${c.device},${first[0]},${token},${c.ts}`;
        case 'kv':
          return [...c.values.map(([m]) => `${m}=${token}`), `ts=${c.ts}`].join(' ');
        case 'senml':
          return encode('senml', c).replace(/"v":[^,}]+/g, `"v":${JSON.stringify(token)}`);
        case 'number':
          return token;
      }
      break;
    }
    case 'missing_field':
      switch (format) {
        case 'json':
          if (c.values.length === 1) return JSON.stringify({ device: c.device, metric: first[0], ts: c.ts });
          return JSON.stringify({ device: c.device, ts: c.ts });
        case 'csv':
          return `${c.device},${first[0]}`;
        case 'kv':
          return `ts=${c.ts}`;
        case 'senml':
          return encode('senml', c).replace(/,"v":[^,}]+/g, '');
        case 'number':
          return '';
      }
  }
  throw new RangeError(`unknown malformed kind ${kind as string} for ${format}`);
}

export interface FaultOptions {
  /** Probability that a frame is replaced by a malformed one. */
  malformed: number;
  /** Probability that a valid frame is held back and sent late. */
  outOfOrder: number;
  maxDelayMs: number;
  /** Probability that a valid frame is sent twice in a row. */
  duplicates: number;
}

export type FaultDecision =
  | { malformed: MalformedKind }
  | { malformed: null; holdMs: number | null; duplicate: boolean };

export class FaultInjector {
  readonly rng: Rng;
  constructor(
    seed: string | number,
    private readonly opts: FaultOptions,
  ) {
    this.rng = streamFor(seed, 'faults');
  }

  /** The fate of one freshly generated frame. */
  decide(): FaultDecision {
    const o = this.opts;
    if (o.malformed > 0 && this.rng() < o.malformed) return { malformed: pick(this.rng, MALFORMED_KINDS) };
    const holdMs = o.outOfOrder > 0 && this.rng() < o.outOfOrder ? uniform(this.rng, 0, o.maxDelayMs) : null;
    const duplicate = o.duplicates > 0 && this.rng() < o.duplicates;
    return { malformed: null, holdMs, duplicate };
  }
}

/** Frames held back until event time reaches their release time, released in release order. */
export class HoldBack<T> {
  private items: { releaseAt: number; seq: number; item: T }[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  add(item: T, releaseAt: number): void {
    const e = { releaseAt, seq: this.seq++, item };
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.releaseAt <= releaseAt) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, e);
  }

  /** Removes and returns the items due at `now` (releaseAt <= now), oldest release first. */
  takeDue(now: number): T[] {
    let n = 0;
    while (n < this.items.length && this.items[n]!.releaseAt <= now) n++;
    return this.items.splice(0, n).map((e) => e.item);
  }

  /** Removes and returns everything, in release order. */
  drain(): T[] {
    return this.items.splice(0).map((e) => e.item);
  }
}
