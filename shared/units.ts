// Durations and sizes as written in config files (SPEC.md section 2):
//   durations: 500ms, 30s, 5m, 1h, 2d      sizes: 512B, 64KB, 512MB, 2GB
// Sizes are binary (1KB = 1024 bytes), like Mosquitto's and most storage tools' config.
import { z } from 'zod';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)$/i;

/** Parses `500ms`, `30s`, `5m`, `1h`, `2d` (or a bare number of milliseconds) into milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new RangeError(`invalid duration ${input}`);
    return input;
  }
  const m = DURATION_RE.exec(input.trim());
  if (!m) throw new RangeError(`invalid duration "${input}", expected e.g. 500ms, 30s, 5m, 1h`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

/** Parses `64KB`, `512MB`, `2GB` (or a bare number of bytes) into bytes. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new RangeError(`invalid size ${input}`);
    return Math.floor(input);
  }
  const m = SIZE_RE.exec(input.trim());
  if (!m) throw new RangeError(`invalid size "${input}", expected e.g. 64KB, 512MB, 2GB`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toUpperCase()]!);
}

export function formatDuration(ms: number): string {
  for (const [unit, f] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= f && ms % f === 0) return `${ms / f}${unit}`;
  }
  return `${ms}ms`;
}

/** Config-schema field: a duration string or number, parsed to milliseconds. */
export const durationSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** Config-schema field: a size string or number, parsed to bytes. */
export const sizeSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseSize(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
