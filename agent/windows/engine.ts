// The window runtime (issue 3): owns every policy around the assigners and the accumulator: per-device
// watermarks, emission, allowed lateness and re-emission, late events, bounded state, counters,
// checkpoints. Pure computation: no I/O, no timers (the agent runtime calls `tick()`), time from the
// injected Clock (monotonic only). Semantics are documented in README.md beside this file.
//
// Single-threaded by construction: the runtime calls ingest/tick/snapshot from one event loop, never
// re-entrantly from inside `out` callbacks.
import type { Clock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { fingerprint } from '../../shared/fingerprint.ts';
import { lateEventId, summaryId } from '../../shared/ids.ts';
import { BoundedMemo, compileMatch, MatchCache, type Matcher } from '../../shared/match.ts';
import type { AggregateName, LateEvent, Reading, Summary } from '../../shared/model.ts';
import { Accumulator, type AccumulatorJSON, needsSketch } from './aggregates.ts';
import { HoppingAssigner } from './hopping.ts';
import { windowTypes } from './registry.ts';
import { overlaps } from './session.ts';
import { TumblingAssigner } from './tumbling.ts';
import { DeviceWatermark, type WatermarkJSON } from './watermark.ts';
import type { CountAssigner, TimeAssigner, WindowAssigner, WindowSpec, WindowType } from './window.ts';

export interface WindowEngineOptions {
  agentId: string;
  /** ms; watermark = max event ts - maxOutOfOrder */
  maxOutOfOrder: number;
  /** ms of monotonic processing time without readings after which a device's watermark advances on its own */
  idleTimeout: number;
  /** bound on (window, device, metric) keys; a reading that would need one more is dropped */
  maxKeys?: number;
  /** bound on open windows (count windows included); a reading that would need one more is dropped */
  maxOpenWindows?: number;
  clock: Clock;
}

export interface WindowEngineOutput {
  summary(s: Summary): void;
  late(e: LateEvent): void;
}

export type DropReason = 'max_keys' | 'max_open_windows' | 'invalid_value';

export interface WindowEngineStats {
  openWindows: number;
  keys: number;
  devices: number;
  /** readings later than allowedLateness, dropped (lateEvents: drop), all windows */
  lateDropped: number;
  /** readings later than allowedLateness, shipped raw (lateEvents: forward) */
  lateForwarded: number;
  /** the same two, per window name */
  lateByWindow: Record<string, { dropped: number; forwarded: number }>;
  /** readings dropped (per window spec they matched) because a state bound bit, or not a finite number */
  droppedByReason: Record<DropReason, number>;
  /** summaries emitted with rev 0 */
  emitted: number;
  /** summaries re-emitted (rev > 0) because late data updated them */
  reemitted: number;
  /** emitted session summaries whose session later merged into one with another start (another id) */
  supersededSessions: number;
  /** windows dropped by restore() because their spec changed or disappeared */
  droppedOnRestore: number;
  /** window-less devices whose watermark was forgotten to make room (device count is bounded by maxKeys) */
  evictedDevices: number;
}

const DEFAULT_MAX_KEYS = 100_000;
const DEFAULT_MAX_OPEN_WINDOWS = 500_000;
const SNAPSHOT_VERSION = 1;
// A (device, metric) → matching specs cache avoids running globs per reading; cleared when it grows
// past this so high-cardinality ids cannot grow it without bound.
const MATCH_CACHE_MAX = 10_000;

/** The specs a (device, metric) reading goes to, with each one's key name in DeviceState.keys. */
interface Match {
  specs: CompiledSpec[];
  /** `specName \0 metric`, built once per (matched list, metric) and shared by every device (issue 14) */
  keyNames: readonly string[];
  /**
   * The device's state and each spec's key state, as last resolved: a reading of a known key takes no
   * map lookup beyond the cache's own two (issue 14). Trusted only while `live` (a removed key or
   * forgotten device is never written to again).
   */
  dev: DeviceState | null;
  keys: (KeyState | null)[];
}

interface CompiledSpec {
  spec: WindowSpec;
  /** The spec's fields the hot path reads, copied into one object shape: the specs of different window
   * types are objects of different shapes, which made every read of them polymorphic (issue 14). */
  name: string;
  allowedLateness: number;
  type: WindowType;
  /** tumbling: size; hopping: size and slide; 0 otherwise */
  size: number;
  slide: number;
  assigner: WindowAssigner;
  aggregates: ReadonlySet<AggregateName>;
  sketch: boolean;
  match: Matcher;
  hash: string;
}

/**
 * One open window of one key: the accumulator of its readings with the window's bounds and emission
 * state. A subclass rather than an object holding an accumulator (issue 14: one object of 72 B less per
 * window, ~1 MiB at 10,000 keys).
 */
class Win extends Accumulator {
  /** last emitted revision; -1 before the first emission */
  rev = -1;
  /** changed since the last emission */
  dirty = false;
  /** readings accepted after the window's first emission (late but within allowedLateness) */
  late = 0;

  constructor(
    public start: number,
    public end: number,
    sketch: boolean,
  ) {
    super(sketch);
  }

  static restore(j: WinJSON): Win {
    const w = new Win(j.start, j.end, Accumulator.sketchedIn(j.acc));
    w.load(j.acc);
    w.rev = j.rev;
    w.dirty = j.dirty;
    w.late = j.late;
    return w;
  }
}

interface KeyState {
  spec: CompiledSpec;
  /** false once removed from its device (Match.keys may still point at it) */
  live: boolean;
  /** the window the key's last reading went to (tumbling): most readings go to the same one */
  last: Win | null;
  device: string;
  metric: string;
  /** time windows ascending by start (tumbling, hopping, session); replaced, never changed in place */
  wins: readonly Win[];
  /** the filling count window (count specs) */
  cnt: Win | null;
  /** The unit of the key's latest reading that had one (SenML `u`), put in summary tags (issue 12 item 5). */
  unit?: string;
}

interface DeviceState {
  device: string;
  /** false once forgotten (Match.dev may still point at it) */
  live: boolean;
  /** the engine's `changedEpoch` when this device was last put in `changed`: a reading of a device
   * already there adds nothing (issue 14: a Set write per reading) */
  changedIn: number;
  wm: DeviceWatermark;
  /** by `specName \0 metric` */
  keys: Map<string, KeyState>;
  /** smallest watermark at which a sweep has work (an emission or a purge); +Infinity when none */
  nextDue: number;
  /** late events of this device so far: part of LateEvent ids */
  lateSeq: number;
  /** count windows emitted so far per `specName \0 metric`: part of their ids. Kept with the device, not
   * the key, so an idle count key can be forgotten without ever reusing a sequence number. */
  countSeqs: Record<string, number>;
}

interface Emission {
  end: number;
  /** the emitting key: the tie-break is its `name \0 device \0 metric` (compareKeys) */
  key: KeyState;
  start: number;
  summary: Summary;
}

interface WinJSON {
  start: number;
  end: number;
  rev: number;
  dirty: boolean;
  late: number;
  acc: AccumulatorJSON;
}

interface KeyJSON {
  spec: string;
  hash: string;
  metric: string;
  wins: WinJSON[];
  cnt: WinJSON | null;
  unit?: string;
}

export interface DeviceJSON {
  device: string;
  wm: WatermarkJSON;
  lateSeq: number;
  countSeqs: Record<string, number>;
  keys: KeyJSON[];
}

export interface SnapshotJSON {
  v: typeof SNAPSHOT_VERSION;
  arrival: number;
  devices: DeviceJSON[];
  counters: Omit<WindowEngineStats, 'openWindows' | 'keys' | 'devices'>;
}

/** Hash of everything that shapes window state. lateEvents and allowedLateness only decide what happens
 * to future late data, so changing them keeps state. */
export function specHash(s: WindowSpec): string {
  const canon = [
    s.type,
    s.size ?? null,
    s.slide ?? null,
    s.gap ?? null,
    s.count ?? null,
    [...new Set(s.aggregates)].sort(),
    s.match.device ?? '*',
    s.match.metric ?? '*',
  ];
  return fingerprint(canon);
}

function compile(s: WindowSpec): CompiledSpec {
  const assigner = windowTypes.get(s.type).assigner(s);
  return {
    spec: s,
    name: s.name,
    allowedLateness: s.allowedLateness,
    type: s.type,
    size: assigner instanceof TumblingAssigner || assigner instanceof HoppingAssigner ? assigner.size : 0,
    slide: assigner instanceof HoppingAssigner ? assigner.slide : 0,
    assigner,
    aggregates: new Set(s.aggregates),
    sketch: needsSketch(s.aggregates),
    match: compileMatch(s.match),
    hash: specHash(s),
  };
}

function newCounters(): SnapshotJSON['counters'] {
  return {
    lateDropped: 0,
    lateForwarded: 0,
    lateByWindow: {},
    droppedByReason: { max_keys: 0, max_open_windows: 0, invalid_value: 0 },
    emitted: 0,
    reemitted: 0,
    supersededSessions: 0,
    droppedOnRestore: 0,
    evictedDevices: 0,
  };
}

export class WindowEngine {
  private readonly specs: CompiledSpec[];
  private readonly specsByName = new Map<string, CompiledSpec>();
  private readonly devices = new Map<string, DeviceState>();
  /** device → metric → Match (shared/match.ts): no string built per reading (issue 14) */
  private readonly matchCache: MatchCache<CompiledSpec, Match>;
  /**
   * Match.keyNames by matched list (shared by MatchCache) and metric: they do not depend on the device, so
   * one array serves every device (issue 14: 10,000 keys held 10,000 arrays and their strings, ~0.9 MiB).
   * Bounded like the match cache: it starts over past MATCH_CACHE_MAX metrics and lists.
   */
  private readonly keyNamesByList = new BoundedMemo<CompiledSpec[], string, readonly string[]>(
    MATCH_CACHE_MAX,
  );
  /** devices with no keys, oldest first: the eviction candidates when the device bound bites */
  private readonly keyless = new Map<string, DeviceState>();
  private readonly maxKeys: number;
  private readonly maxOpenWindows: number;
  private counters = newCounters();
  private keyCount = 0;
  private openWindows = 0;
  /** arrival counter: orders first/last ties */
  private arrival = 0;
  /** emissions collected during one ingest/tick, released sorted by (end, key, start) */
  private pending: Emission[] = [];
  /** devices whose state may have changed (or that were evicted) since the last takeChanged(): the
   * incremental checkpoint writes only these (issue 14, agent/runtime/checkpoint-parts.ts) */
  private changed = new Set<string>();
  /** counts takeChanged() calls: DeviceState.changedIn equal to it means the device is in `changed` */
  private changedEpoch = 0;

  constructor(
    specs: readonly WindowSpec[],
    private readonly opts: WindowEngineOptions,
    private readonly out: WindowEngineOutput,
  ) {
    this.specs = specs.map(compile);
    this.matchCache = new MatchCache(
      this.specs,
      (s) => s.match,
      MATCH_CACHE_MAX,
      (specs, _device, metric) => ({
        specs,
        keyNames: this.keyNames(specs, metric),
        dev: null,
        keys: specs.map(() => null),
      }),
    );
    for (const c of this.specs) this.specsByName.set(c.spec.name, c);
    this.maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
    this.maxOpenWindows = opts.maxOpenWindows ?? DEFAULT_MAX_OPEN_WINDOWS;
  }

  /**
   * Routes one reading to every matching window spec. Never throws on bad input: it is counted.
   * `score`: the rules' anomaly score of the reading (issue 11), given apart so the caller need not copy
   * the reading to add it (issue 14); `now`: the monotonic instant when the caller already read it for
   * the frame (one clock read per frame for the windows and the rules, issue 14).
   */
  ingest(reading: Reading, score: number | undefined = reading.score, now?: number): void {
    const match = this.matching(reading.device, reading.metric);
    const matching = match.specs;
    if (matching.length === 0) return;
    if (!Number.isFinite(reading.value) || !Number.isFinite(reading.ts)) {
      this.counters.droppedByReason.invalid_value += matching.length;
      return;
    }
    // Whole milliseconds: window bounds and LateEvent.ts are integers on the wire (shared/model.ts), and a
    // SenML `t` in fractional seconds would otherwise leak sub-millisecond starts into session/count ids.
    const r = Number.isInteger(reading.ts) ? reading : { ...reading, ts: Math.floor(reading.ts) };
    const mono = now ?? this.opts.clock.monotonic();
    const seq = this.arrival++;
    let dev = match.dev;
    let created = false;
    if (dev === null || !dev.live) {
      dev = this.devices.get(r.device) ?? null;
      if (dev === null) {
        if (this.devices.size >= this.maxKeys && !this.evictKeylessDevice()) {
          this.counters.droppedByReason.max_keys += matching.length;
          return;
        }
        dev = {
          device: r.device,
          live: true,
          changedIn: -1,
          wm: new DeviceWatermark(mono),
          keys: new Map(),
          nextDue: Number.POSITIVE_INFINITY,
          lateSeq: 0,
          countSeqs: {},
        };
        this.devices.set(r.device, dev);
        created = true;
      }
      match.dev = dev;
    }
    // Lateness is judged against the watermark before this reading moves it (as Flink does).
    const wmBefore = dev.wm.wm;
    for (let i = 0; i < matching.length; i++) this.route(dev, match, i, r, score, seq, wmBefore);
    if (created && dev.keys.size === 0) {
      // Every spec refused the reading (max_keys): keep no state for it, so the bound holds.
      this.forgetDevice(dev);
      this.keyless.delete(r.device);
      return;
    }
    if (dev.changedIn !== this.changedEpoch) {
      dev.changedIn = this.changedEpoch;
      this.changed.add(r.device);
    }
    dev.wm.observe(r.ts, mono, this.opts.maxOutOfOrder);
    if (dev.wm.wm >= dev.nextDue) this.sweep(dev);
    this.flush();
  }

  /** Idle watermark advancement (monotonic time), partial count windows of idle devices, emission. */
  tick(): void {
    const now = this.opts.clock.monotonic();
    const { idleTimeout, maxOutOfOrder } = this.opts;
    for (const dev of this.devices.values()) {
      // Idle advancement exists to close windows: a device without any has nothing to advance. Its
      // watermark is kept (not advanced) so data later than what was already emitted stays late.
      if (dev.keys.size === 0 || !dev.wm.isIdle(now, idleTimeout)) continue;
      this.changed.add(dev.device);
      dev.wm.advanceIdle(now, idleTimeout, maxOutOfOrder);
      if (dev.wm.wm >= dev.nextDue) this.sweep(dev);
      for (const [k, key] of dev.keys) {
        if (key.cnt !== null) this.emitCount(dev, key);
        // An idle count key holds nothing more; forget it (its sequence lives on in dev.countSeqs).
        if (key.spec.type === 'count') this.removeKey(dev, k);
      }
    }
    this.flush();
  }

  stats(): WindowEngineStats {
    const c = this.counters;
    return {
      openWindows: this.openWindows,
      keys: this.keyCount,
      devices: this.devices.size,
      lateDropped: c.lateDropped,
      lateForwarded: c.lateForwarded,
      lateByWindow: structuredClone(c.lateByWindow),
      droppedByReason: { ...c.droppedByReason },
      emitted: c.emitted,
      reemitted: c.reemitted,
      supersededSessions: c.supersededSessions,
      droppedOnRestore: c.droppedOnRestore,
      evictedDevices: c.evictedDevices,
    };
  }

  /** The full state as plain JSON (checkpoints, SIGHUP reload). */
  snapshot(): unknown {
    const now = this.opts.clock.monotonic();
    const snap = this.snapshotHeader();
    for (const dev of this.devices.values()) snap.devices.push(deviceToJSON(dev, now));
    return snap;
  }

  /**
   * The snapshot in parts (incremental checkpoints, issue 14): `snapshotHeader()` (everything but the
   * devices, `devices` empty) plus `snapshotDevice(d)` per device; `restore()` takes the header with the
   * devices put back into `devices`. takeChanged() names the devices whose part may differ from the last
   * time it was called (a device no longer there: snapshotDevice returns undefined).
   */
  snapshotHeader(): SnapshotJSON {
    return {
      v: SNAPSHOT_VERSION,
      arrival: this.arrival,
      devices: [],
      counters: structuredClone(this.counters),
    };
  }

  /** `serialise`: the caller stringifies the part before the engine runs again; values are not copied. */
  snapshotDevice(device: string, serialise = false): DeviceJSON | undefined {
    const dev = this.devices.get(device);
    return dev === undefined ? undefined : deviceToJSON(dev, this.opts.clock.monotonic(), serialise);
  }

  deviceNames(): IterableIterator<string> {
    return this.devices.keys();
  }

  takeChanged(): Set<string> {
    const c = this.changed;
    this.changed = new Set();
    this.changedEpoch++;
    return c;
  }

  /**
   * Rebuilds an engine from `snapshot()`. Windows whose spec disappeared or changed (specHash) are
   * dropped and counted in `droppedOnRestore`; device watermarks and counters are always kept.
   */
  static restore(
    snapshot: unknown,
    specs: readonly WindowSpec[],
    opts: WindowEngineOptions,
    out: WindowEngineOutput,
  ): WindowEngine {
    const snap = snapshot as SnapshotJSON | null;
    if (
      snap === null ||
      typeof snap !== 'object' ||
      snap.v !== SNAPSHOT_VERSION ||
      !Array.isArray(snap.devices)
    ) {
      throw new EdgeflowError(
        'STORE_CORRUPT',
        `window checkpoint is not a version ${SNAPSHOT_VERSION} window-engine snapshot`,
      );
    }
    const e = new WindowEngine(specs, opts, out);
    const now = opts.clock.monotonic();
    e.arrival = snap.arrival;
    e.counters = { ...newCounters(), ...structuredClone(snap.counters) };
    for (const d of snap.devices) {
      const dev: DeviceState = {
        device: d.device,
        live: true,
        changedIn: -1,
        wm: DeviceWatermark.fromJSON(d.wm, now),
        keys: new Map(),
        // Sweep at the next chance: allowedLateness may have shrunk, making some windows purgeable.
        nextDue: Number.NEGATIVE_INFINITY,
        lateSeq: d.lateSeq,
        countSeqs: { ...d.countSeqs },
      };
      for (const k of d.keys) {
        const spec = e.specsByName.get(k.spec);
        if (spec === undefined || spec.hash !== k.hash) {
          e.counters.droppedOnRestore += k.wins.length + (k.cnt === null ? 0 : 1);
          continue;
        }
        const key = e.newKey(spec, d.device, k.metric);
        // Starts are unique within a key (a snapshot lists a key's windows, each start once).
        if (k.wins.length > 0) key.wins = k.wins.map((w) => Win.restore(w)).sort((x, y) => x.start - y.start);
        key.cnt = k.cnt === null ? null : Win.restore(k.cnt);
        if (typeof k.unit === 'string') key.unit = k.unit;
        e.openWindows += key.wins.length + (key.cnt === null ? 0 : 1);
        dev.keys.set(`${spec.spec.name}\0${k.metric}`, key);
        e.keyCount++;
      }
      e.devices.set(dev.device, dev);
      if (dev.keys.size === 0) e.keyless.set(dev.device, dev);
    }
    return e;
  }

  // ---- internals ----

  private keyNames(specs: CompiledSpec[], metric: string): readonly string[] {
    return this.keyNamesByList.get(specs, metric, keyNamesOf);
  }

  private matching(device: string, metric: string): Match {
    return this.matchCache.get(device, metric);
  }

  private newKey(spec: CompiledSpec, device: string, metric: string): KeyState {
    return {
      spec,
      live: true,
      last: null,
      device,
      metric,
      wins: NO_WINS,
      cnt: null,
    };
  }

  /** The key of `match.specs[i]` for a reading of `dev` (created if new), remembered in the match. */
  private key(dev: DeviceState, match: Match, i: number, metric: string, unit?: string): KeyState | null {
    let key: KeyState | null = match.keys[i] ?? null;
    if (key === null || !key.live) {
      const k = match.keyNames[i]!;
      key = dev.keys.get(k) ?? null;
      if (key === null) {
        if (this.keyCount >= this.maxKeys) return null;
        key = this.newKey(match.specs[i]!, dev.device, metric);
        if (dev.keys.size === 0) this.keyless.delete(dev.device);
        dev.keys.set(k, key);
        this.keyCount++;
      }
      match.keys[i] = key;
    }
    if (unit !== undefined) key.unit = unit;
    return key;
  }

  private newWin(start: number, end: number, spec: CompiledSpec): Win | null {
    if (this.openWindows >= this.maxOpenWindows) return null;
    this.openWindows++;
    return new Win(start, end, spec.sketch);
  }

  /** A key created for a reading that no window could take must not hold a slot of maxKeys. */
  private removeIfEmpty(dev: DeviceState, key: KeyState): void {
    if (key.wins.length === 0 && key.cnt === null) this.removeKey(dev, keyNameOf(key));
  }

  private removeKey(dev: DeviceState, k: string): void {
    const key = dev.keys.get(k);
    if (key === undefined) return;
    dev.keys.delete(k);
    key.live = false;
    this.keyCount--;
    if (dev.keys.size === 0) this.keyless.set(dev.device, dev);
  }

  /**
   * Devices are bounded by maxKeys too. A device without keys is kept only for its watermark (so data
   * later than what it already emitted stays late instead of re-opening an emitted window under the same
   * id); under pressure the one that has been keyless longest goes first.
   */
  private evictKeylessDevice(): boolean {
    for (const [id, dev] of this.keyless) {
      this.keyless.delete(id);
      this.forgetDevice(dev);
      this.changed.add(id);
      this.counters.evictedDevices++;
      return true;
    }
    return false;
  }

  private forgetDevice(dev: DeviceState): void {
    this.devices.delete(dev.device);
    dev.live = false;
  }

  private drop(reason: DropReason): void {
    this.counters.droppedByReason[reason]++;
  }

  private route(
    dev: DeviceState,
    match: Match,
    i: number,
    r: Reading,
    score: number | undefined,
    seq: number,
    wm: number,
  ): void {
    const spec = match.specs[i]!;
    const allowed = spec.allowedLateness;
    switch (spec.type) {
      case 'tumbling': {
        // The common case computed in place: one window, no range array per reading (issue 14). Same
        // arithmetic as HoppingAssigner with slide = size.
        const size = spec.size;
        const start = Math.floor(r.ts / size) * size;
        this.routeOne(dev, match, i, r, score, seq, wm, start, start + size);
        return;
      }
      case 'hopping': {
        // The windows holding ts are [start, start + size) for start = last, last - slide, ... > ts - size
        // (HoppingAssigner.assign), walked here from the earliest without a range array (issue 14).
        const { size, slide } = spec;
        const last = Math.floor(r.ts / slide) * slide;
        // Cheap early exit before creating a key: even the last window holding ts is past its lateness.
        if (wm >= last + size + allowed) {
          this.tooLate(dev, spec, r);
          return;
        }
        let first = last;
        while (first - slide > r.ts - size) first -= slide;
        const key = this.key(dev, match, i, r.metric, r.unit);
        if (key === null) {
          this.drop('max_keys');
          return;
        }
        let refused = false;
        for (let start = first; start <= last; start += slide) {
          const end = start + size;
          // Earlier hopping windows may already be purged while later ones still accept: the reading
          // counts in those still open (the oracle test applies the same per-window rule).
          if (wm >= end + allowed) continue;
          let w = winAt(key.wins, start);
          if (w === undefined) {
            const nw = this.newWin(start, end, spec);
            if (nw === null) {
              refused = true;
              continue;
            }
            w = nw;
            key.wins = withWin(key.wins, w);
          }
          this.addTo(dev, w, r, score, seq, w.rev >= 0);
        }
        if (refused) {
          this.drop('max_open_windows');
          this.removeIfEmpty(dev, key);
        }
        return;
      }
      case 'session': {
        const a = spec.assigner as TimeAssigner;
        this.routeSession(dev, match, i, a.assign(r.ts)[0]!, r, score, seq, wm);
        return;
      }
      case 'count': {
        const key = this.key(dev, match, i, r.metric, r.unit);
        if (key === null) {
          this.drop('max_keys');
          return;
        }
        if (key.cnt === null) {
          key.cnt = this.newWin(r.ts, r.ts, spec);
          if (key.cnt === null) {
            this.drop('max_open_windows');
            this.removeIfEmpty(dev, key);
            return;
          }
        }
        key.cnt.add(r.value, r.ts, seq, score);
        if (key.cnt.n >= (spec.assigner as CountAssigner).count) this.emitCount(dev, key);
        return;
      }
      default:
        throw new TypeError(`window ${spec.name}: no route for ${spec.type} windows`);
    }
  }

  /** A reading that belongs to exactly one time window `[start, end)` (tumbling). */
  private routeOne(
    dev: DeviceState,
    match: Match,
    i: number,
    r: Reading,
    score: number | undefined,
    seq: number,
    wm: number,
    start: number,
    end: number,
  ): void {
    const spec = match.specs[i]!;
    if (wm >= end + spec.allowedLateness) {
      this.tooLate(dev, spec, r);
      return;
    }
    const key = this.key(dev, match, i, r.metric, r.unit);
    if (key === null) {
      this.drop('max_keys');
      return;
    }
    // Most readings of a key go to the window its previous reading went to: no map lookup then.
    let w = key.last;
    if (w === null || w.start !== start) {
      w = winAt(key.wins, start) ?? null;
      if (w === null) {
        w = this.newWin(start, end, spec);
        if (w === null) {
          this.drop('max_open_windows');
          this.removeIfEmpty(dev, key);
          return;
        }
        key.wins = withWin(key.wins, w);
      }
      key.last = w;
    }
    this.addTo(dev, w, r, score, seq, w.rev >= 0);
  }

  private routeSession(
    dev: DeviceState,
    match: Match,
    i: number,
    proto: { start: number; end: number },
    r: Reading,
    score: number | undefined,
    seq: number,
    wm: number,
  ): void {
    const spec = match.specs[i]!;
    const existing = dev.keys.get(match.keyNames[i]!);
    const hits: Win[] = [];
    if (existing !== undefined) for (const w of existing.wins) if (overlaps(w, proto)) hits.push(w);
    // With no open session to join, the proto-session alone decides lateness. An open session it joins
    // is by construction not yet purged (wm < its end + allowedLateness), so joining is not late, unless
    // the reading would move the session's start back to a time whose own lateness has expired: a
    // session's start is its summary id, and that start may belong to an emitted session already
    // purged, whose id would then be emitted again from revision 0 (a consumer keeping the highest
    // revision per id would drop the update). Such a reading is late like one with no session to join.
    const movesStart = hits.every((w) => proto.start < w.start); // true when there is nothing to join
    if (movesStart && wm >= proto.end + spec.allowedLateness) {
      this.tooLate(dev, spec, r);
      return;
    }
    const key = existing ?? this.key(dev, match, i, r.metric, r.unit);
    if (existing && r.unit !== undefined) existing.unit = r.unit;
    if (key === null) {
      this.drop('max_keys');
      return;
    }
    // Late-but-accepted: some part of this session had already been emitted (before any start reset).
    const afterEmission = hits.some((h) => h.rev >= 0);
    let target: Win;
    if (hits.length === 0) {
      const nw = this.newWin(proto.start, proto.end, spec);
      if (nw === null) {
        this.drop('max_open_windows');
        this.removeIfEmpty(dev, key);
        return;
      }
      target = nw;
    } else {
      hits.sort((x, y) => x.start - y.start);
      target = hits[0]!;
      key.wins = withoutWins(key.wins, (w) => hits.includes(w));
      for (const w of hits.slice(1)) {
        target.merge(w);
        target.end = Math.max(target.end, w.end);
        target.late += w.late;
        // An emitted session absorbed into one with an earlier start lives on under that start's id.
        if (w.rev >= 0) this.counters.supersededSessions++;
        this.openWindows--;
      }
      target.dirty = true;
    }
    if (proto.start < target.start) {
      // The session now starts earlier: a new id. Its previously emitted summary is superseded.
      if (target.rev >= 0) this.counters.supersededSessions++;
      target.rev = -1;
      target.start = proto.start;
    }
    target.end = Math.max(target.end, proto.end);
    key.wins = withWin(key.wins, target);
    this.addTo(dev, target, r, score, seq, afterEmission);
  }

  /** `afterEmission`: the reading arrives after the window's first emission; it counts in `late`. */
  private addTo(
    dev: DeviceState,
    w: Win,
    r: Reading,
    score: number | undefined,
    seq: number,
    afterEmission: boolean,
  ): void {
    w.add(r.value, r.ts, seq, score);
    w.dirty = true;
    if (afterEmission) w.late++;
    if (w.end < dev.nextDue) dev.nextDue = w.end;
  }

  private tooLate(dev: DeviceState, spec: CompiledSpec, r: Reading): void {
    const name = spec.spec.name;
    const per = this.counters.lateByWindow[name] ?? { dropped: 0, forwarded: 0 };
    this.counters.lateByWindow[name] = per;
    if (spec.spec.lateEvents === 'forward') {
      this.counters.lateForwarded++;
      per.forwarded++;
      const id = lateEventId(this.opts.agentId, name, r.device, r.metric, r.ts, dev.lateSeq++);
      this.out.late({
        id,
        device: r.device,
        metric: r.metric,
        value: r.value,
        ts: r.ts,
        window: name,
        tags: r.unit === undefined ? {} : { unit: r.unit },
      });
    } else {
      this.counters.lateDropped++;
      per.dropped++;
    }
  }

  /** Emits every due dirty window of the device, purges windows past their lateness, recomputes nextDue. */
  private sweep(dev: DeviceState): void {
    const wm = dev.wm.wm;
    let next = Number.POSITIVE_INFINITY;
    for (const key of dev.keys.values()) {
      const allowed = key.spec.allowedLateness;
      let purged = 0;
      for (const w of key.wins) {
        if (w.end > wm) {
          if (w.end < next) next = w.end;
          continue;
        }
        if (w.dirty) this.emit(key, w);
        if (w.end + allowed <= wm) {
          purged++;
          if (key.last === w) key.last = null;
          this.openWindows--;
        } else if (w.end + allowed < next) next = w.end + allowed;
      }
      if (purged > 0) key.wins = withoutPurged(key.wins, allowed, wm);
      if (key.wins.length === 0 && key.cnt === null && key.spec.type !== 'count')
        this.removeKey(dev, keyNameOf(key));
    }
    dev.nextDue = next;
  }

  private emit(key: KeyState, w: Win): void {
    w.rev++;
    w.dirty = false;
    if (w.rev === 0) this.counters.emitted++;
    else this.counters.reemitted++;
    const spec = key.spec.spec;
    this.pending.push({
      end: w.end,
      key,
      start: w.start,
      summary: this.summary(key, spec.name, w.start, w.end, w),
    });
  }

  private emitCount(dev: DeviceState, key: KeyState): void {
    const w = key.cnt;
    if (w === null) return;
    key.cnt = null;
    this.openWindows--;
    this.counters.emitted++;
    const ck = `${key.spec.spec.name}\0${key.metric}`;
    const seq = dev.countSeqs[ck] ?? 0;
    dev.countSeqs[ck] = seq + 1;
    // Count windows report the event-time bounds of their readings (end inclusive, README.md).
    const start = w.minTs;
    const end = w.maxTs;
    w.rev = 0;
    const s = this.summary(key, key.spec.spec.name, start, end, w);
    s.id = summaryId(this.opts.agentId, `${key.spec.spec.name}#${seq}`, key.device, key.metric, start);
    this.pending.push({ end, key, start, summary: s });
  }

  private summary(key: KeyState, name: string, start: number, end: number, w: Win): Summary {
    // Fields in the order they always had (the aggregates after count, then late and tags), written in
    // place rather than spread from a result object (issue 14).
    const s = {
      id: summaryId(this.opts.agentId, name, key.device, key.metric, start),
      rev: w.rev,
      device: key.device,
      metric: key.metric,
      window: { name, type: key.spec.type, start, end },
      count: w.n,
    } as Summary;
    w.putResult(s, key.spec.aggregates);
    s.late = w.late;
    s.tags = key.unit === undefined ? {} : { unit: key.unit };
    return s;
  }

  /** Releases pending emissions ordered by window end, then key, then start (deterministic). */
  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 1) batch.sort(emissionOrder);
    for (const e of batch) this.out.summary(e.summary);
  }
}

function deviceToJSON(dev: DeviceState, now: number, serialise = false): DeviceJSON {
  const keys: KeyJSON[] = [];
  for (const key of dev.keys.values()) {
    const wins: WinJSON[] = [];
    for (const w of key.wins) wins.push(winToJSON(w, serialise));
    keys.push({
      spec: key.spec.spec.name,
      hash: key.spec.hash,
      metric: key.metric,
      wins,
      cnt: key.cnt === null ? null : winToJSON(key.cnt, serialise),
      ...(key.unit === undefined ? {} : { unit: key.unit }),
    });
  }
  return {
    device: dev.device,
    wm: dev.wm.toJSON(now),
    lateSeq: dev.lateSeq,
    countSeqs: { ...dev.countSeqs },
    keys,
  };
}

/** Emissions by window end, then key, then start (deterministic). */
function emissionOrder(a: Emission, b: Emission): number {
  return a.end - b.end || compareKeys(a, b) || a.start - b.start;
}

/**
 * The emission tie-break: `name \0 device \0 metric` in string order. Issue 14: kept per key, that string
 * was ~1.3 MiB of concatenated strings at 15,000 keys; built per emission, it cost 2–4 % of the cheapest
 * pipeline case (a concatenation and a flattening per summary). The joined strings share everything up
 * to the first part that differs; when neither of those two parts is a prefix of the other, they first
 * differ inside it, so comparing that part alone orders exactly as the joined strings do. Only when one
 * is a prefix of the other does the \0 after it matter (it sorts below every code unit, and a part may
 * itself hold one): then the joined strings are compared. Issue 14: checking every part for a \0 per
 * comparison (or per emission) cost 3 % of the windows alone.
 */
function compareKeys(a: Emission, b: Emission): number {
  const x = a.key;
  const y = b.key;
  if (x === y) return 0;
  let p = x.spec.spec.name;
  let q = y.spec.spec.name;
  if (p === q) {
    p = x.device;
    q = y.device;
    if (p === q) {
      p = x.metric;
      q = y.metric;
      if (p === q) return 0;
    }
  }
  if (p.length < q.length ? q.startsWith(p) : p.startsWith(q)) {
    const j = joinedKey(x);
    const k = joinedKey(y);
    return j < k ? -1 : j > k ? 1 : 0;
  }
  return p < q ? -1 : 1;
}

/** `specName \0 metric` for each spec: the keys of DeviceState.keys a reading of `metric` goes to. */
function keyNamesOf(specs: CompiledSpec[], metric: string): readonly string[] {
  return specs.map((s) => `${s.spec.name}\0${metric}`);
}

/** The key's name in DeviceState.keys (keyNamesOf). */
function keyNameOf(key: KeyState): string {
  return `${key.spec.spec.name}\0${key.metric}`;
}

function joinedKey(key: KeyState): string {
  return `${key.spec.spec.name}\0${key.device}\0${key.metric}`;
}

// A key's open windows as an array sorted by start, replaced on change (issue 14): a Map per key cost
// ~190 B (its hash table and a boxed number per start) for the 1–3 windows a key has open, and every
// count key held an empty one. A key opens a window once per window length, so copying the array then
// costs less than keeping a table; lookups are a binary search.
const NO_WINS: readonly Win[] = [];

/** The window starting at `start`, if open. */
function winAt(wins: readonly Win[], start: number): Win | undefined {
  let lo = 0;
  let hi = wins.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (wins[mid]!.start < start) lo = mid + 1;
    else hi = mid;
  }
  const w = wins[lo];
  return w !== undefined && w.start === start ? w : undefined;
}

/** A copy of `wins` with `w` in start order (replacing one with the same start, as Map#set did). */
function withWin(wins: readonly Win[], w: Win): readonly Win[] {
  const same = winAt(wins, w.start);
  // new Array(n) filled by index: a backing store of exactly n slots (push would make room for 17).
  const out = new Array<Win>(wins.length + (same === undefined ? 1 : 0));
  let j = 0;
  let placed = false;
  for (const x of wins) {
    if (x === same) continue;
    if (!placed && w.start < x.start) {
      out[j++] = w;
      placed = true;
    }
    out[j++] = x;
  }
  if (!placed) out[j] = w;
  return out;
}

/** A copy of `wins` without the windows `drop` names, sized as withWin's. */
function withoutWins(wins: readonly Win[], drop: (w: Win) => boolean): readonly Win[] {
  let n = 0;
  for (const w of wins) if (!drop(w)) n++;
  if (n === 0) return NO_WINS;
  const out = new Array<Win>(n);
  let j = 0;
  for (const w of wins) if (!drop(w)) out[j++] = w;
  return out;
}

/** `wins` without those past their lateness at `wm` (sweep's purge, as withoutWins without a closure per key: issue 14). */
function withoutPurged(wins: readonly Win[], allowed: number, wm: number): readonly Win[] {
  let n = 0;
  for (const w of wins) if (!(w.end + allowed <= wm)) n++;
  if (n === 0) return NO_WINS;
  const out = new Array<Win>(n);
  let j = 0;
  for (const w of wins) if (!(w.end + allowed <= wm)) out[j++] = w;
  return out;
}

function winToJSON(w: Win, serialise = false): WinJSON {
  return {
    start: w.start,
    end: w.end,
    rev: w.rev,
    dirty: w.dirty,
    late: w.late,
    acc: w.toJSON(serialise),
  };
}
