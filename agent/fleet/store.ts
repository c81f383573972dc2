// The agent's fleet state in dataDir (`fleet-state.json`): the last-known-good document, the pending
// marker and the last report. One small JSON file, replaced atomically (write a temporary file, fsync
// it, rename over, fsync the directory), so a power cut leaves the old state or the new, never half.
//
// Why not a key in the outbox's checkpoint transaction (STYLE.md, "New state joins that transaction"):
// the pending marker must decide WHICH configuration the process starts with, before the outbox opens
// (its buffer policy is part of that configuration), and it must be durable before the reload starts,
// independent of when the next checkpoint commits. Nothing in it is data: losing it only means the
// agent starts on its local file and takes the retained document again.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { fleetReportSchema } from '../../shared/fleet.ts';

const appliedSchema = z.object({
  version: z.number().int().min(1),
  hash: z.string(),
  rollout: z.string(),
  /** The document's `config` (raw YAML shape), merged over the local file at start. */
  config: z.record(z.string(), z.unknown()),
});
export type AppliedDoc = z.infer<typeof appliedSchema>;

const stateSchema = z.object({
  v: z.literal(1),
  /** Highest verified version handled (applied, rejected or rolled back): never tried again. */
  seen: z.number().int().min(0),
  lastKnownGood: appliedSchema.nullable(),
  /** Written before a reload starts; cleared when it is healthy or rolled back. */
  pending: appliedSchema
    .extend({
      starts: z.number().int().min(0),
      /** The process was stopped cleanly (SIGTERM) while this was pending: not a death. */
      stoppedCleanly: z.boolean().optional(),
    })
    .nullable(),
  report: fleetReportSchema.nullable(),
});
export type FleetState = z.infer<typeof stateSchema>;

export const EMPTY_STATE: FleetState = { v: 1, seen: 0, lastKnownGood: null, pending: null, report: null };

export class FleetStore {
  readonly path: string;
  constructor(private readonly dataDir: string) {
    this.path = join(dataDir, 'fleet-state.json');
  }

  /** The stored state; EMPTY_STATE when there is none. A file that does not parse is an error. */
  read(): FleetState {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return structuredClone(EMPTY_STATE);
      throw e;
    }
    return stateSchema.parse(JSON.parse(text));
  }

  write(state: FleetState): void {
    mkdirSync(this.dataDir, { recursive: true });
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(state)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    // The rename itself is durable only once the directory entry is.
    const dir = openSync(this.dataDir, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}
