// Incremental checkpoints of the engine state (issue 14). The window state is stored as a header row
// (`windows`: arrival counter, engine counters, no devices) plus bucket rows (`windows/b/<n>`) holding
// ~PARTS_PER_BUCKET devices each; the rule state as a header row (`rules`: every rule's name and
// fingerprint, no keys) plus bucket rows (`rules/b/<n>`) of rule keys. A part's bucket is a hash of its
// id. A checkpoint rewrites the headers and only the buckets holding a part that changed since the last
// successful one (the engines' takeChanged). Before, every checkpoint (up to 10 a second with the group commit of issue 19)
// serialised, deflated and kept a copy of the whole state: at 10,000 keys 13 + 12 MiB of JSON, 0.5 s of
// CPU, and most of the agent's RSS (BENCHMARKS.md section 14).
//
// Same transaction as before (docs/design/delivery.md): the rows written and the rows left alone
// together are exactly the engines' state at the commit, because a row is left alone only when its
// parts did not change since the commit that wrote it. A failed write keeps the buckets to write in
// `unsaved` for the next attempt. An engine this object has not written yet (start, reload, a state
// reset) is written in full, and rows of buckets it does not use are deleted.
//
// Window watermarks store their silence relative to when they were written (`wm.silent`, monotonic). A
// row left alone was written earlier than the header, so at restore its silence is extended by the
// difference, measured on a "line" clock (monotonic + offset) that continues across restarts: the
// restored engine is the one a full snapshot at the last commit would have given. Rule kinds that store
// monotonic time (missing) are rewritten at every checkpoint by the rule engine's takeChanged.
import type { Clock } from '../../shared/clock.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { RuleEngine, RuleSnapshot } from '../rules/engine.ts';
import type { DeviceJSON, SnapshotJSON, WindowEngine } from '../windows/engine.ts';
import { decodeCheckpointValue } from './checkpoint-codec.ts';

/** How one engine's snapshot splits into a header and parts. */
interface Layout<E, H, P> {
  /** the header row's key; bucket rows are `${partPrefix}${n}` */
  key: string;
  partPrefix: string;
  header(engine: E): H;
  changed(engine: E): Iterable<string>;
  all(engine: E): Iterable<string>;
  part(engine: E, id: string): P | undefined;
  /** Puts a part read back into the header (restore); `silence` = line time between part and header. */
  attach(header: H, part: P, silence: number): void;
  /** Whether a stored header is one whose parts are attachable (else returned as it is). */
  isHeader(j: unknown): j is H;
}

/** A stored bucket row: its parts and the line time it was written at. */
interface BucketRow<P> {
  at: number;
  parts: [id: string, part: P][];
}

/**
 * Parts per bucket row, about. One row per part (the first version) wrote 1.4 KB rows of plain JSON
 * per device where the single row had been 3 KB deflated: bench/sdcard.ts wrote 576 instead of 324 MiB
 * an hour. A deflate per row was no way out: thousands of zlib streams a second at 10,000 keys cost
 * more malloc'ed memory than the rows (10k-keys RSS 431 vs 316 MiB). Buckets of ~32 parts are deflated
 * like any large checkpoint value (one row at bench/sdcard.ts's 10 devices, as before) and still keep
 * what one checkpoint serialises to the buckets that changed.
 */
const PARTS_PER_BUCKET = 32;

/** FNV-1a: a part's bucket must not change between runs (it is where its row is). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class PartedCheckpoint<E extends object, H extends object, P> {
  /** The engine the stored rows describe; another one (restart, reload) is written in full. */
  private engine: E | null = null;
  /** Bucket count, a power of two; grows with the parts (all rows rewritten then). */
  private buckets = 1;
  /** The parts known per bucket (a part that is gone is dropped when its bucket is written). */
  private members = new Map<number, Set<string>>();
  private parts = 0;
  /** Buckets with a stored row, as of the last successful write. */
  private readonly stored = new Set<number>();
  /** Buckets whose row must be (re)written or deleted at the next write. */
  private readonly unsaved = new Set<number>();
  /** Buckets in the entries handed out last, committed by written(). */
  private inFlight: [bucket: number, present: boolean][] = [];

  constructor(
    private readonly layout: Layout<E, H, P>,
    private readonly line: LineClock,
  ) {}

  /**
   * The snapshot of the last checkpoint, as the engine's restore() takes it; undefined when there is
   * none. A header of an agent before issue 14 (the whole state in one row) is returned as it is.
   * Throws when a row cannot be read (the caller counts a state reset; the stale rows get deleted).
   */
  read(outbox: Outbox): unknown {
    const { key, partPrefix } = this.layout;
    const rows = outbox.readCheckpoints(partPrefix);
    for (const [k] of rows) this.stored.add(Number(k.slice(partPrefix.length)));
    const stored = outbox.readCheckpoint(key);
    if (stored === undefined) return undefined;
    const head = JSON.parse(decodeCheckpointValue(stored)) as H & { at?: number };
    if (!this.layout.isHeader(head)) return head;
    const at = typeof head.at === 'number' ? head.at : null;
    if (at !== null) this.line.resume(at);
    for (const [, v] of rows) {
      const row = JSON.parse(decodeCheckpointValue(v)) as BucketRow<P>;
      const silence = at === null ? 0 : Math.max(0, at - row.at);
      for (const [, p] of row.parts) this.layout.attach(head, p, silence);
    }
    delete head.at;
    return head;
  }

  /**
   * The header and the changed bucket rows as checkpoint entries (JSON; null = delete the row), built
   * one row at a time as the caller iterates (it encodes each before asking for the next: issue 14).
   * The caller takes every entry before the engine runs again (parts are not copied: snapshotDevice,
   * snapshotKey with `serialise`).
   */
  *entries(engine: E): Generator<[string, string | null]> {
    const { layout } = this;
    const changed = layout.changed(engine);
    if (engine !== this.engine) {
      this.engine = engine;
      this.rebucket(layout.all(engine), 1);
    } else {
      for (const id of changed) this.place(id);
      if (this.parts > this.buckets * PARTS_PER_BUCKET * 2) this.rebucket(this.known(), this.buckets);
    }
    const at = this.line.now();
    this.inFlight = [];
    yield [layout.key, JSON.stringify({ ...layout.header(engine), at })];
    for (const b of this.unsaved) {
      const row: BucketRow<P> = { at, parts: [] };
      const ids = this.members.get(b);
      for (const id of ids ?? []) {
        const p = layout.part(engine, id);
        if (p !== undefined) row.parts.push([id, p]);
        else {
          ids!.delete(id);
          this.parts--;
        }
      }
      const present = row.parts.length > 0;
      this.inFlight.push([b, present]);
      if (present) yield [layout.partPrefix + b, JSON.stringify(row)];
      else if (this.stored.has(b)) yield [layout.partPrefix + b, null];
    }
  }

  /** The entries handed out last are committed. */
  written(): void {
    for (const [b, present] of this.inFlight) {
      if (present) this.stored.add(b);
      else this.stored.delete(b);
      this.unsaved.delete(b);
    }
    this.inFlight = [];
  }

  private place(id: string): void {
    const b = fnv1a(id) & (this.buckets - 1);
    let ids = this.members.get(b);
    if (ids === undefined) {
      ids = new Set();
      this.members.set(b, ids);
    }
    if (!ids.has(id)) {
      ids.add(id);
      this.parts++;
    }
    this.unsaved.add(b);
  }

  private *known(): Generator<string> {
    for (const ids of this.members.values()) yield* ids;
  }

  /** Every part into a bucket count that fits them; every row is rewritten, rows no longer used deleted. */
  private rebucket(ids: Iterable<string>, atLeast: number): void {
    const all = [...ids];
    let n = atLeast;
    while (all.length > n * PARTS_PER_BUCKET) n *= 2;
    this.buckets = n;
    this.members = new Map();
    this.parts = 0;
    for (const id of all) this.place(id);
    for (const b of this.stored) this.unsaved.add(b);
  }
}

/** Monotonic time that continues the line time of the checkpoint restored from (see the top). */
export class LineClock {
  private offset = 0;
  constructor(private readonly clock: Clock) {}
  now(): number {
    return this.clock.monotonic() + this.offset;
  }
  /** The restored checkpoint was written at line time `at`: continue from there. */
  resume(at: number): void {
    this.offset = at - this.clock.monotonic();
  }
}

export const WINDOW_PART_PREFIX = 'windows/b/';
export const RULE_PART_PREFIX = 'rules/b/';

const isObj = (j: unknown): j is Record<string, unknown> => typeof j === 'object' && j !== null;

export const windowLayout: Layout<WindowEngine, SnapshotJSON, DeviceJSON> = {
  key: 'windows',
  partPrefix: WINDOW_PART_PREFIX,
  header: (e) => e.snapshotHeader(),
  changed: (e) => e.takeChanged(),
  all: (e) => e.deviceNames(),
  // Stringified by entries() before the engine runs again: the held values are not copied.
  part: (e, id) => e.snapshotDevice(id, true),
  attach(h, d, silence) {
    if (typeof d.wm?.silent === 'number') d.wm.silent += silence;
    h.devices.push(d);
  },
  isHeader: (j): j is SnapshotJSON => isObj(j) && Array.isArray(j.devices),
};

type RuleKeyJSON = RuleSnapshot['rules'][number]['keys'][number];
const ruleKeyId = (rule: string, device: string, metric: string) => JSON.stringify([rule, device, metric]);

export const ruleLayout: Layout<RuleEngine, RuleSnapshot, RuleKeyJSON & { rule: string }> = {
  key: 'rules',
  partPrefix: RULE_PART_PREFIX,
  header: (e) => e.snapshotHeader(),
  changed: (e) => e.takeChanged().map(([r, d, m]) => ruleKeyId(r, d, m)),
  *all(e) {
    for (const [r, d, m] of e.keyNames()) yield ruleKeyId(r, d, m);
  },
  part(e, id) {
    const [rule, device, metric] = JSON.parse(id) as [string, string, string];
    // Stringified by entries() before the engine runs again: no copy of the detector state.
    const k = e.snapshotKey(rule, device, metric, true);
    return k === undefined ? undefined : { rule, ...k };
  },
  attach(h, { rule, ...k }) {
    // A key of a rule the header does not list cannot be placed: it is dropped, as restore() drops
    // keys of rules that are gone.
    h.rules.find((r) => r.name === rule)?.keys.push(k);
  },
  isHeader: (j): j is RuleSnapshot => isObj(j) && Array.isArray(j.rules),
};

/** The two engines' incremental checkpoints, sharing one line clock. */
export function engineCheckpoints(clock: Clock) {
  const line = new LineClock(clock);
  return {
    windows: new PartedCheckpoint(windowLayout, line),
    rules: new PartedCheckpoint(ruleLayout, line),
  };
}
