// Incremental window checkpoints (issue 14): the window state is stored as a header row (`windows`:
// arrival counter, engine counters, no devices) plus one row per device (`windows/d/<device>`), and a
// checkpoint rewrites the header and only the rows of the devices whose state changed since the last
// successful one (WindowEngine.takeChanged). Before, every checkpoint (up to 10 a second with the
// group commit of issue 19) serialised, deflated and kept a copy of the whole state: at 10,000 keys a
// 13 MiB JSON string, 0.5 s of CPU, and most of the agent's RSS (BENCHMARKS.md section 14).
//
// Same transaction as before (docs/design/delivery.md): the rows written and the rows left alone
// together are exactly the engine's state at the commit, because a row is left alone only when its
// device did not change since the commit that wrote it. A failed write keeps the devices to write in
// `unsaved` for the next attempt. An engine this object has not written yet (start, reload, a state
// reset) is written in full, and rows of devices it does not have are deleted.
//
// Watermarks store their silence relative to when they were written (`wm.silent`, monotonic). A row
// left alone was written earlier than the header, so at restore its silence is extended by the
// difference, measured on a "line" clock (monotonic + offset) that continues across restarts: the
// restored engine is the one a full snapshot at the last commit would have given.
import type { Clock } from '../../shared/clock.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { DeviceJSON, SnapshotJSON, WindowEngine } from '../windows/engine.ts';
import { decodeCheckpointValue } from './checkpoint-codec.ts';

export const WINDOWS_KEY = 'windows';
export const WINDOW_PART_PREFIX = 'windows/d/';

/** The stored header: the engine's snapshot without devices, plus the line time it was written at. */
type HeaderJSON = SnapshotJSON & { at?: number };
/** A stored device row: the device's part of the snapshot and the line time it was written at. */
interface PartJSON {
  at: number;
  d: DeviceJSON;
}

export class WindowCheckpointParts {
  /** The engine the stored rows describe; another one (restart, reload) is written in full. */
  private engine: WindowEngine | null = null;
  /** Devices with a stored row, as of the last successful write. */
  private readonly stored = new Set<string>();
  /** Devices whose row must be (re)written or deleted at the next write. */
  private readonly unsaved = new Set<string>();
  /** Devices in the entries handed out last, committed by written(). */
  private inFlight: [device: string, present: boolean][] = [];
  /** line time = monotonic + lineOffset: continues the line time of the checkpoint restored from. */
  private lineOffset = 0;

  constructor(private readonly clock: Clock) {}

  /**
   * The window snapshot of the last checkpoint, as WindowEngine.restore takes it; undefined when there
   * is none. Also reads a checkpoint of an agent before issue 14 (one row with the devices inside).
   * Throws when a row cannot be read (the caller counts a state reset; the stale rows get deleted).
   */
  read(outbox: Outbox): unknown {
    const rows = outbox.readCheckpoints(WINDOW_PART_PREFIX);
    for (const [k] of rows) this.stored.add(k.slice(WINDOW_PART_PREFIX.length));
    const stored = outbox.readCheckpoint(WINDOWS_KEY);
    if (stored === undefined) return undefined;
    const head = JSON.parse(decodeCheckpointValue(stored)) as HeaderJSON;
    if (head === null || typeof head !== 'object' || !Array.isArray(head.devices)) return head;
    const at = typeof head.at === 'number' ? head.at : null;
    if (at !== null) this.lineOffset = at - this.clock.monotonic();
    for (const [, v] of rows) {
      const part = JSON.parse(decodeCheckpointValue(v)) as PartJSON;
      if (at !== null && typeof part.d.wm?.silent === 'number') part.d.wm.silent += Math.max(0, at - part.at);
      head.devices.push(part.d);
    }
    delete head.at;
    return head;
  }

  /** The header and the changed device rows as checkpoint entries (JSON; null = delete the row). */
  entries(engine: WindowEngine): [string, string | null][] {
    const changed = engine.takeChanged();
    if (engine !== this.engine) {
      this.engine = engine;
      for (const d of this.stored) this.unsaved.add(d);
      for (const d of engine.deviceNames()) this.unsaved.add(d);
    } else for (const d of changed) this.unsaved.add(d);
    const at = this.clock.monotonic() + this.lineOffset;
    const head: HeaderJSON = { ...engine.snapshotHeader(), at };
    const out: [string, string | null][] = [[WINDOWS_KEY, JSON.stringify(head)]];
    this.inFlight = [];
    for (const d of this.unsaved) {
      const part = engine.snapshotDevice(d);
      this.inFlight.push([d, part !== undefined]);
      if (part !== undefined)
        out.push([WINDOW_PART_PREFIX + d, JSON.stringify({ at, d: part } satisfies PartJSON)]);
      else if (this.stored.has(d)) out.push([WINDOW_PART_PREFIX + d, null]);
    }
    return out;
  }

  /** The entries handed out last are committed. */
  written(): void {
    for (const [d, present] of this.inFlight) {
      if (present) this.stored.add(d);
      else this.stored.delete(d);
      this.unsaved.delete(d);
    }
    this.inFlight = [];
  }
}
