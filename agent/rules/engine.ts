// RuleEngine: routes readings and window summaries to the rules whose `match` and `on` select them,
// runs time-based checks on tick(), and checkpoints/restores every key's state. Pure computation: no
// I/O, no timers of its own (the runtime calls tick()), time only from the injected clock.
//
// Single-threaded by contract: the runtime calls onReading/onSummary/tick/snapshot from one loop, so
// no method needs to guard against another running concurrently. `out.alert` must not throw.
import type { Clock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { canonicalJson, fingerprint } from '../../shared/fingerprint.ts';
import { alertId } from '../../shared/ids.ts';
import { compileMatch, MatchCache, type Matcher } from '../../shared/match.ts';
import { type Alert, alertSchema, type Reading, type Summary } from '../../shared/model.ts';
import type { Env } from './expr.ts';
import { type Detector, type KeyState, Rule, type RuleEvent } from './rule.ts';
import { buildDetector, isValidated, type RuleSpec, ruleSpecsSchema } from './schema.ts';

export {
  compileRuleSpecs,
  type RuleSpec,
  type RuleSpecInput,
  ruleSpecSchema,
  ruleSpecsSchema,
} from './schema.ts';

export interface RuleEngineOptions {
  agentId: string;
  clock: Clock;
  /** Per rule, how many (device, metric) keys are tracked at most [100000]; more are counted and ignored. */
  maxKeysPerRule?: number;
}

export interface RuleEngineOutput {
  alert(a: Alert): void;
}

export interface RuleEngineStats {
  alertsFired: number;
  alertsResolved: number;
  firing: number;
  /** Events a rule could not evaluate (e.g. a null window aggregate in `when`, a non-finite value). */
  evalErrors: number;
  /** Events of new keys ignored because a rule reached maxKeysPerRule. */
  keysDropped: number;
  /** Window summaries older than the last one a rule applied for their key (revisions of older windows). */
  staleSummaries: number;
}

interface Entry {
  rule: Rule;
  match: Matcher;
  fp: string;
}

const SNAPSHOT_VERSION = 1;
const MATCH_CACHE_MAX = 50_000;

/** The reading rules of one (device, metric) and, once resolved, each one's key state. */
interface Route {
  entries: Entry[];
  /** states[i] belongs to entries[i]; a rule never forgets a key, so a resolved state stays valid */
  states: (KeyState | undefined)[];
}

export class RuleEngine {
  private readonly entries: Entry[] = [];
  private readonly readingEntries: Entry[] = [];
  private readonly windowEntries = new Map<string, Entry[]>();
  private readonly tickEntries: Entry[] = [];
  /** device → metric → Route (shared/match.ts): no string built per reading (issue 14) */
  private readonly matchCache = new MatchCache<Entry, Route>(
    this.readingEntries,
    (e) => e.match,
    MATCH_CACHE_MAX,
    (entries) => ({ entries, states: entries.map(() => undefined) }),
  );
  private readonly counters = { fired: 0, resolved: 0 };
  private evalErrors = 0;
  private keysDropped = 0;
  private staleSummaries = 0;
  private readonly maxKeys: number;
  /** keys whose state may have changed since the last takeChanged(), with their rule: the incremental
   * checkpoint writes only these (issue 14, agent/runtime/checkpoint-parts.ts) */
  private changed = new Map<KeyState, Entry>();
  /** Counts takeChanged() calls: a key whose `changedRound` is this one is in `changed` already, so a
   *  reading pays a number compare, not a map write (issue 14, branch `rules`). */
  private changedRound = 0;

  constructor(
    specs: RuleSpec[],
    private readonly opts: RuleEngineOptions,
    private readonly out: RuleEngineOutput,
  ) {
    // Specs from the agent config were validated by it (ruleSpecSchema) and are taken as they are;
    // hand-written specs (tests, tools) are parsed here, for the same defaults and checks.
    let valid: readonly RuleSpec[] = specs;
    if (!specs.every(isValidated)) {
      const res = ruleSpecsSchema().safeParse(specs);
      if (!res.success) {
        const problems = res.error.issues.map((i) => `rules.${i.path.join('.')}: ${i.message}`);
        throw new EdgeflowError('CONFIG_INVALID', `invalid rules: ${problems.join('; ')}`);
      }
      valid = res.data;
    }
    this.maxKeys = opts.maxKeysPerRule ?? 100_000;
    const ctx = { agentId: opts.agentId, emit: (a: Alert) => this.out.alert(a) };
    for (const spec of valid) {
      const built = buildDetector(spec);
      const rule = new Rule(
        spec,
        built.detector,
        ctx,
        this.counters,
        built.defaultMessage,
        built.defaultCooldown,
      );
      const e: Entry = {
        rule,
        match: compileMatch(spec.match),
        fp: fingerprint(spec),
      };
      this.entries.push(e);
      if (spec.on === 'reading') this.readingEntries.push(e);
      else {
        const list = this.windowEntries.get(spec.on.window) ?? [];
        list.push(e);
        this.windowEntries.set(spec.on.window, list);
      }
      if (built.detector.tick) this.tickEntries.push(e);
    }
  }

  private matches(e: Entry, device: string, metric: string): boolean {
    return e.match.device(device) && e.match.metric(metric);
  }

  private readingRules(device: string, metric: string): Route {
    return this.matchCache.get(device, metric);
  }

  private keyState(e: Entry, device: string, metric: string): KeyState | null {
    const rule = e.rule;
    if (rule.keys.size >= this.maxKeys && !rule.keys.has(Rule.keyOf(device, metric))) {
      this.keysDropped++;
      return null;
    }
    return rule.state(device, metric);
  }

  /**
   * A reading. Returns the highest anomaly score the matching statistical rules gave it (issue 11;
   * the runtime hands it to the windows for `anomaly_max`), undefined when none scored it. `mono`: the
   * monotonic instant when the caller already read it for the frame (issue 14: one clock read per frame).
   */
  onReading(r: Reading, mono?: number): number | undefined {
    // A configuration without reading rules (windows only, or rules on windows) pays no routing.
    if (this.readingEntries.length === 0) return undefined;
    const route = this.readingRules(r.device, r.metric);
    const list = route.entries;
    if (list.length === 0) return undefined;
    if (!Number.isFinite(r.value) || !Number.isFinite(r.ts)) {
      this.evalErrors += list.length;
      return undefined;
    }
    const ev: RuleEvent = new ReadingEvent(r.device, r.metric, r.ts, r.value);
    const now = mono ?? this.opts.clock.monotonic();
    let score: number | undefined;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      let st = route.states[i];
      if (st === undefined) {
        // Not cached while maxKeysPerRule refuses the key, so every refused event is still counted.
        const got = this.keyState(e, r.device, r.metric);
        if (!got) continue;
        st = got;
        route.states[i] = st;
      }
      if (st.changedRound !== this.changedRound) {
        st.changedRound = this.changedRound;
        this.changed.set(st, e);
      }
      try {
        const s = e.rule.onEvent(st, ev, now);
        if (s !== undefined && (score === undefined || s > score)) score = s;
      } catch {
        this.evalErrors++;
      }
    }
    return score;
  }

  /**
   * A window summary. Only the newest window per key is applied; a revision (same window, higher
   * rev, after late data) re-applies the detector from its state before that window, so the final
   * fields count once. The lifecycle is not rolled back: an alert already firing is not re-emitted.
   */
  onSummary(s: Summary): void {
    const list = this.windowEntries.get(s.window.name);
    if (!list) return;
    const mono = this.opts.clock.monotonic();
    const base = {
      count: s.count,
      min: s.min ?? null,
      max: s.max ?? null,
      mean: s.mean ?? null,
      sum: s.sum ?? null,
      stddev: s.stddev ?? null,
      first: s.first ?? null,
      last: s.last ?? null,
      p50: s.p50 ?? null,
      p95: s.p95 ?? null,
      anomaly_max: s.anomaly_max ?? null,
      late: s.late ?? 0,
      ts: s.window.end,
      device: s.device,
      metric: s.metric,
      window: s.window.name,
    };
    for (const e of list) {
      if (!this.matches(e, s.device, s.metric)) continue;
      const st = this.keyState(e, s.device, s.metric);
      if (!st) continue;
      const w = st.win;
      if (w && w.start === s.window.start && w.end === s.window.end) {
        if (s.rev <= w.rev) continue; // the same revision again (re-sent): already applied
        st.det = copyState(w.before);
        w.rev = s.rev;
      } else if (w && s.window.end <= w.end) {
        this.staleSummaries++;
        continue;
      } else {
        st.win = { start: s.window.start, end: s.window.end, rev: s.rev, before: copyState(st.det) };
      }
      this.changed.set(st, e);
      const raw = base[e.rule.spec.field ?? 'mean'];
      const value = typeof raw === 'number' && Number.isFinite(raw) ? raw : null;
      const ev: RuleEvent = {
        device: s.device,
        metric: s.metric,
        ts: s.window.end,
        value,
        env: { ...base, value },
      };
      try {
        e.rule.onEvent(st, ev, mono);
      } catch {
        this.evalErrors++;
      }
    }
  }

  /** Time-based checks (missing) against the monotonic clock; call it every second or so. */
  tick(): void {
    if (this.tickEntries.length === 0) return;
    const mono = this.opts.clock.monotonic();
    for (const e of this.tickEntries) e.rule.onTick(mono);
  }

  /** The firing alert of every key currently firing (as it was emitted). */
  firing(): Alert[] {
    const out: Alert[] = [];
    for (const e of this.entries)
      for (const st of e.rule.keys.values())
        if (st.firing) out.push({ ...st.firing, tags: { ...st.firing.tags } });
    return out;
  }

  stats(): RuleEngineStats {
    let firing = 0;
    for (const e of this.entries) for (const st of e.rule.keys.values()) if (st.firing) firing++;
    return {
      alertsFired: this.counters.fired,
      alertsResolved: this.counters.resolved,
      firing,
      evalErrors: this.evalErrors,
      keysDropped: this.keysDropped,
      staleSummaries: this.staleSummaries,
    };
  }

  /**
   * JSON-serialisable state: per rule its spec fingerprint and per key the detector state, the
   * lifecycle (pending since, firing alert, episode) and the last window applied. Monotonic instants
   * are stored as remaining durations (they mean nothing after a restart).
   */
  snapshot(): RuleSnapshot {
    const mono = this.opts.clock.monotonic();
    const snap = this.snapshotHeader();
    this.entries.forEach((e, i) => {
      for (const st of e.rule.keys.values()) snap.rules[i]!.keys.push(keyToJSON(e, st, mono));
    });
    return snap;
  }

  /**
   * The snapshot in parts (incremental checkpoints, issue 14): `snapshotHeader()` (every rule, no keys)
   * plus `snapshotKey()` per key; `restore()` takes the header with the keys put back. takeChanged()
   * names the keys whose state may differ from the last time it was called; keys of kinds that
   * checkpoint monotonic time as time left (`save`, e.g. missing) or change on tick() are always named,
   * so what is stored of them is never older than the last checkpoint.
   */
  snapshotHeader(): RuleSnapshot {
    return {
      v: SNAPSHOT_VERSION,
      rules: this.entries.map((e) => ({ name: e.rule.spec.name, fp: e.fp, keys: [] })),
    };
  }

  /**
   * `serialise`: the caller turns the part into JSON text before the engine runs again (the incremental
   * checkpoint), so detector state is handed out as it is instead of copied. At 10,000 keys the copies
   * (structuredClone of every zscore/spike ring) were most of the 37 MiB a checkpoint of the rule state
   * allocated for 5.6 MiB of JSON, every second (issue 14).
   */
  snapshotKey(
    rule: string,
    device: string,
    metric: string,
    serialise = false,
  ): RuleSnapshot['rules'][number]['keys'][number] | undefined {
    const e = this.entries.find((x) => x.rule.spec.name === rule);
    const st = e?.rule.keys.get(Rule.keyOf(device, metric));
    return e === undefined || st === undefined
      ? undefined
      : keyToJSON(e, st, this.opts.clock.monotonic(), serialise);
  }

  /** Every key as [rule, device, metric]. */
  *keyNames(): Generator<[rule: string, device: string, metric: string]> {
    for (const e of this.entries)
      for (const st of e.rule.keys.values()) yield [e.rule.spec.name, st.device, st.metric];
  }

  takeChanged(): [rule: string, device: string, metric: string][] {
    const out: [string, string, string][] = [];
    for (const [st, e] of this.changed) out.push([e.rule.spec.name, st.device, st.metric]);
    this.changed = new Map();
    this.changedRound++;
    for (const e of this.entries) {
      const d = e.rule.detector;
      if (d.save === undefined && d.tick === undefined) continue;
      for (const st of e.rule.keys.values()) out.push([e.rule.spec.name, st.device, st.metric]);
    }
    return out;
  }

  /**
   * An engine for `specs` carrying over the state in `snap` for every rule whose spec is unchanged.
   * A rule that changed starts fresh; keys it had firing are resolved now (a new alert fires if the
   * condition still holds under the new definition), and so are those of rules that were removed.
   * A snapshot that cannot be read is ignored (fresh start), never a crash.
   */
  static restore(
    snap: unknown,
    specs: RuleSpec[],
    opts: RuleEngineOptions,
    out: RuleEngineOutput,
  ): RuleEngine {
    const engine = new RuleEngine(specs, opts, out);
    engine.load(snap);
    return engine;
  }

  private load(snap: unknown): void {
    if (!isObj(snap) || snap.v !== SNAPSHOT_VERSION || !Array.isArray(snap.rules)) return;
    const mono = this.opts.clock.monotonic();
    const byName = new Map(this.entries.map((e) => [e.rule.spec.name, e]));
    for (const r of snap.rules as unknown[]) {
      if (!isObj(r) || typeof r.name !== 'string' || !Array.isArray(r.keys)) continue;
      const e = byName.get(r.name);
      // Checkpoints before issue 13 stored the canonical JSON itself, not its hash.
      const same = e !== undefined && (r.fp === e.fp || r.fp === canonicalJson(e.rule.spec));
      for (const k of r.keys as unknown[]) {
        if (!isObj(k) || typeof k.device !== 'string' || typeof k.metric !== 'string') continue;
        const firing = alertSchema.safeParse(k.firing);
        if (!same) {
          if (firing.success && firing.data.state === 'firing')
            this.resolveOrphan(firing.data, k.episodeStart);
          continue;
        }
        try {
          this.loadKey(e.rule, k, firing.success ? firing.data : null, mono);
        } catch {
          // A key whose state does not load starts fresh; if it was firing, close its episode.
          if (firing.success && firing.data.state === 'firing')
            this.resolveOrphan(firing.data, k.episodeStart);
        }
      }
    }
  }

  private loadKey(rule: Rule, k: Record<string, unknown>, firing: Alert | null, mono: number): void {
    const d: Detector = rule.detector;
    const template = d.init();
    const load = (j: unknown) => {
      if (d.load) return d.load(j, mono);
      if (!sameShape(template, j)) throw new TypeError('detector state does not match its kind');
      return structuredClone(j);
    };
    if (k.det === undefined) throw new TypeError('no detector state');
    const det = load(k.det);
    const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
    const w = k.win;
    let win: KeyState['win'] = null;
    if (isObj(w)) {
      const start = num(w.start);
      const end = num(w.end);
      const rev = num(w.rev);
      if (start !== null && end !== null && rev !== null && w.before !== undefined)
        win = { start, end, rev, before: load(w.before) };
    }
    const st = rule.state(k.device as string, k.metric as string);
    st.det = det;
    st.pendingSince = num(k.pendingSince);
    st.firing = firing && firing.state === 'firing' ? firing : null;
    st.episodeStart = st.firing ? (num(k.episodeStart) ?? st.firing.ts) : null;
    st.quietUntil = num(k.quietUntil);
    st.win = win;
  }

  private resolveOrphan(a: Alert, episodeStart: unknown): void {
    const ep = typeof episodeStart === 'number' && Number.isFinite(episodeStart) ? episodeStart : a.ts;
    this.counters.resolved++;
    this.out.alert({
      ...a,
      id: alertId(this.opts.agentId, a.rule, a.device, a.metric, ep, 'resolved'),
      state: 'resolved',
      ts: Math.max(a.ts, Math.trunc(this.opts.clock.now())),
      value: null,
      message: `${a.rule} resolved: ${a.device} ${a.metric} (rule changed or removed)`,
    });
  }
}

export interface RuleSnapshot {
  v: number;
  rules: {
    name: string;
    fp: string;
    keys: {
      device: string;
      metric: string;
      det: unknown;
      pendingSince: number | null;
      firing: Alert | null;
      episodeStart: number | null;
      quietUntil: number | null;
      win: { start: number; end: number; rev: number; before: unknown } | null;
    }[];
  }[];
}

/**
 * A reading as rules see it, its own expression scope (`value`, `ts`, `device`, `metric`: the names the
 * reading scope declares, read by name): one object per reading instead of an event and an env beside it
 * (issue 14, branch `rules`). A spread (`{ ...ev.env, score }`) copies the same four fields as before.
 */
class ReadingEvent implements RuleEvent {
  constructor(
    readonly device: string,
    readonly metric: string,
    readonly ts: number,
    readonly value: number,
  ) {}
  get env(): Env {
    return this as unknown as Env;
  }
}

function keyToJSON(
  e: Entry,
  st: KeyState,
  mono: number,
  serialise = false,
): RuleSnapshot['rules'][number]['keys'][number] {
  const d = e.rule.detector;
  const save = (s: unknown) => (d.save ? d.save(s, mono) : serialise ? s : structuredClone(s));
  return {
    device: st.device,
    metric: st.metric,
    det: save(st.det),
    pendingSince: st.pendingSince,
    firing: st.firing,
    episodeStart: st.episodeStart,
    quietUntil: st.quietUntil,
    win: st.win && {
      start: st.win.start,
      end: st.win.end,
      rev: st.win.rev,
      before: save(st.win.before),
    },
  };
}

/**
 * Does checkpointed detector state `v` look like the kind's fresh state `t`? Same keys, same types;
 * a null in the fresh state stands for "number or null"; arrays hold finite numbers. Guards a
 * restored engine against a damaged checkpoint turning every event into an evaluation error.
 */
function sameShape(t: unknown, v: unknown): boolean {
  if (t === null) return v === null || (typeof v === 'number' && Number.isFinite(v));
  if (Array.isArray(t))
    return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (typeof t === 'number') return typeof v === 'number' && Number.isFinite(v);
  if (typeof t !== 'object') return typeof v === typeof t;
  if (!isObj(v)) return false;
  const tk = Object.keys(t as object);
  if (tk.length !== Object.keys(v).length) return false;
  return tk.every((k) => Object.hasOwn(v, k) && sameShape((t as Record<string, unknown>)[k], v[k]));
}

/**
 * A deep copy of detector state, which is plain JSON data by contract (rule.ts Detector): objects with
 * fixed keys, arrays, numbers, null. Twice per window summary a window rule applies; structuredClone
 * costs ~1 µs even for the empty state of a threshold rule (issue 14).
 */
function copyState<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = copyState(v[i]);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = copyState((v as Record<string, unknown>)[k]);
    // A key named __proto__ stays a key (as structuredClone keeps it), not a prototype change.
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    else out[k] = x;
  }
  return out as T;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}
