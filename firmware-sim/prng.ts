// Seeded pseudo-random numbers, so the same --seed gives the same stream (SPEC.md section 6).
// mulberry32 (Tommy Ettinger, public domain): a 32-bit state, one multiply-xorshift per draw, period 2^32.
// Good enough statistically for noise and fault decisions, tiny, and identical on every platform
// because it uses only 32-bit integer arithmetic (Math.imul). Not for anything cryptographic.

export type Rng = () => number;

/** Returns a generator of floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 32-bit FNV-1a over the parts, then the murmur3 finaliser to spread the bits. Each role (a device's
 * signal, its anomalies, the fault injector) gets its own stream derived from the seed, so switching
 * one feature on does not change the values of the others.
 */
export function deriveSeed(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function streamFor(seed: string | number, ...role: readonly (string | number)[]): Rng {
  return mulberry32(deriveSeed(seed, ...role));
}

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Standard normal draw (Box-Muller; one of the pair is discarded to keep the stream simple). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]: log(0) never happens
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}
