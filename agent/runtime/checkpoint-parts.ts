// Incremental checkpoints of the engine state (issue 14). The window state is stored as a header row
// (`windows`: arrival counter, engine counters, no devices) plus one row per device
// (`windows/d/<device>`); the rule state as a header row (`rules`: every rule's name and fingerprint, no
// keys) plus one row per rule key (`rules/k/["rule","device","metric"]`). A checkpoint rewrites the
// headers and only the rows whose state changed since the last successful one (the engines'
// takeChanged). Before, every checkpoint (up to 10 a second with the group commit of issue 19)
// serialised, deflated and kept a copy of the whole state: at 10,000 keys 13 + 12 MiB of JSON, 0.5 s of
// CPU, and most of the agent's RSS (BENCHMARKS.md section 14).
//
// Same transaction as before (docs/design/delivery.md): the rows written and the rows left alone
// together are exactly the engines' state at the commit, because a row is left alone only when its
// part did not change since the commit that wrote it. A failed write keeps the parts to write in
// `unsaved` for the next attempt. An engine this object has not written yet (start, reload, a state
// reset) is written in full, and rows of parts it does not have are deleted.
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
  /** the header row's key; part rows are `${key}/${kind}/${id}` */
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

/** A stored part row: the part and the line time it was written at. */
interface PartRow<P> {
  at: number;
  p: P;
}

export class PartedCheckpoint<E extends object, H extends object, P> {
  /** The engine the stored rows describe; another one (restart, reload) is written in full. */
  private engine: E | null = null;
  /** Parts with a stored row, as of the last successful write. */
  private readonly stored = new Set<string>();
  /** Parts whose row must be (re)written or deleted at the next write. */
  private readonly unsaved = new Set<string>();
  /** Parts in the entries handed out last, committed by written(). */
  private inFlight: [id: string, present: boolean][] = [];

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
    for (const [k] of rows) this.stored.add(k.slice(partPrefix.length));
    const stored = outbox.readCheckpoint(key);
    if (stored === undefined) return undefined;
    const head = JSON.parse(decodeCheckpointValue(stored)) as H & { at?: number };
    if (!this.layout.isHeader(head)) return head;
    const at = typeof head.at === 'number' ? head.at : null;
    if (at !== null) this.line.resume(at);
    for (const [, v] of rows) {
      const row = JSON.parse(decodeCheckpointValue(v)) as PartRow<P>;
      this.layout.attach(head, row.p, at === null ? 0 : Math.max(0, at - row.at));
    }
    delete head.at;
    return head;
  }

  /** The header and the changed part rows as checkpoint entries (JSON; null = delete the row). */
  entries(engine: E): [string, string | null][] {
    const { layout } = this;
    const changed = layout.changed(engine);
    if (engine !== this.engine) {
      this.engine = engine;
      for (const id of this.stored) this.unsaved.add(id);
      for (const id of layout.all(engine)) this.unsaved.add(id);
    } else for (const id of changed) this.unsaved.add(id);
    const at = this.line.now();
    const out: [string, string | null][] = [[layout.key, JSON.stringify({ ...layout.header(engine), at })]];
    this.inFlight = [];
    for (const id of this.unsaved) {
      const p = layout.part(engine, id);
      this.inFlight.push([id, p !== undefined]);
      if (p !== undefined) out.push([layout.partPrefix + id, JSON.stringify({ at, p } satisfies PartRow<P>)]);
      else if (this.stored.has(id)) out.push([layout.partPrefix + id, null]);
    }
    return out;
  }

  /** The entries handed out last are committed. */
  written(): void {
    for (const [id, present] of this.inFlight) {
      if (present) this.stored.add(id);
      else this.stored.delete(id);
      this.unsaved.delete(id);
    }
    this.inFlight = [];
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

export const WINDOW_PART_PREFIX = 'windows/d/';
export const RULE_PART_PREFIX = 'rules/k/';

const isObj = (j: unknown): j is Record<string, unknown> => typeof j === 'object' && j !== null;

export const windowLayout: Layout<WindowEngine, SnapshotJSON, DeviceJSON> = {
  key: 'windows',
  partPrefix: WINDOW_PART_PREFIX,
  header: (e) => e.snapshotHeader(),
  changed: (e) => e.takeChanged(),
  all: (e) => e.deviceNames(),
  part: (e, id) => e.snapshotDevice(id),
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
    const k = e.snapshotKey(rule, device, metric);
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

/** Rows of incremental checkpoints: never deflated, never compared (they are known to have changed). */
export function isPart(key: string): boolean {
  return key.startsWith(WINDOW_PART_PREFIX) || key.startsWith(RULE_PART_PREFIX);
}
