// What the repository reads from outside itself, each through one documented environment variable
// (issue 13: the repository stands alone; README "Outside the repository"). Defaults are the layout of
// the product's workspace, where the repository sits beside `shared/` (the spec and the data sets);
// a clone elsewhere sets the variable or gets a clear skip.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));

export const OUTSIDE = {
  /** The upstream public contract that docs/spec.md copies. */
  spec: { env: 'EDGEFLOW_SPEC_PATH', default: '../shared/SPEC.md' },
  /** The Numenta Anomaly Benchmark corpus (data/<category>/<file>.csv, labels/combined_windows.json). */
  nab: { env: 'EDGEFLOW_NAB_DIR', default: '../shared/datasets/nab', legacyEnv: 'NAB_DIR' },
} as const;

/** The path for `which`: its variable if set, else the default relative to the repository root. */
export function outsidePath(which: keyof typeof OUTSIDE): string {
  const o: { env: string; default: string; legacyEnv?: string } = OUTSIDE[which];
  const set = process.env[o.env] || (o.legacyEnv ? process.env[o.legacyEnv] : undefined);
  return set ? resolve(set) : resolve(REPO, o.default);
}

/** The sentence a test or bench prints when it skips for want of it. */
export function notFound(which: keyof typeof OUTSIDE, what: string): string {
  return `${what} not found at ${outsidePath(which)} (set ${OUTSIDE[which].env} to where it is)`;
}
