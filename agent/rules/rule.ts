// The rule contract and the alert lifecycle, written once (STYLE.md: the wrapper owns policy, plugins do
// arithmetic). A kind (threshold.ts, zscore.ts, ...) is a `Detector`: given its own state and one event
// it says whether the condition holds. Everything else is here, for every kind alike:
//   - per (rule, device, metric) key state,
//   - `for` (the condition must hold this long in event time before the alert fires),
//   - ok → firing → resolved transitions, each emitted exactly once, with deterministic ids,
//   - the Alert item (SPEC.md section 3) and its message template.
// Detectors are called from one thread, one event at a time, never read the clock (the monotonic
// instant comes in the update context) and never see the output:
// they need no locking and are trivially testable.
import { z } from 'zod';
import { alertId } from '../../shared/ids.ts';
import { AGGREGATES, type Alert } from '../../shared/model.ts';
import { type Descriptor, lazily } from '../../shared/registry.ts';
import { durationSchema, parseDuration } from '../../shared/units.ts';
import { compileCondition, type Env, ExprError, type Scope } from './expr.ts';

// ---- spec fields every kind shares (kind files add their own keys; schema.ts assembles the union) ----

const GLOB_RE = /^.{1,256}$/s;
const ON_WINDOW_RE = /^window:(.+)$/;
const ON_ERROR = 'expected "reading" or "window:<window name>"';

/** `on: reading`, `on: "window:temp-1m"` (SPEC.md form) or `on: {window: temp-1m}`; normalised to the last. */
export const onSchema = z
  .union([z.string(), z.strictObject({ window: z.string().min(1) })], { error: ON_ERROR })
  .transform((v, ctx): 'reading' | { window: string } => {
    if (typeof v !== 'string') return { window: v.window };
    if (v === 'reading') return 'reading';
    const m = ON_WINDOW_RE.exec(v);
    if (m) return { window: m[1]! };
    ctx.addIssue({ code: 'custom', message: ON_ERROR });
    return z.NEVER;
  });

/** A duration (`30s`, `5m`, or ms); `what` explains it when the key is missing. */
export function duration(what: string) {
  return z
    .union([z.string(), z.number()], {
      error: (iss) =>
        iss.input === undefined ? `required: ${what}` : 'expected a duration such as 500ms, 30s, 5m, 1h',
    })
    .transform((v, ctx) => {
      try {
        const ms = parseDuration(v);
        if (ms > 0) return ms;
        ctx.addIssue({ code: 'custom', message: 'expected a duration above 0' });
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
      return z.NEVER;
    })
    .meta({ unit: 'duration' });
}

/** An expression key; `what` explains it when the key is missing. */
export function expression(what: string) {
  return z.string({
    error: (iss) => (iss.input === undefined ? `required: ${what}` : 'expected an expression string'),
  });
}

/** A kind's spec object: strict, so a misspelt key is reported with the keys the kind does take. */
/**
 * Built on first call (issue 14): a start builds only the schemas of the kinds its config names
 * (shared/registry.ts discriminatedUnionOf); every kind's schema at load was ~5 ms of each start.
 */
export function kindSchema<K extends string, S extends z.ZodRawShape>(kind: K, shape: () => S) {
  return lazily(() => {
    const full = { ...commonSpecShape(), kind: z.literal(kind), ...shape() };
    const allowed = Object.keys(full).join(', ');
    return z.strictObject(full, {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} for kind ${kind} (allowed: ${allowed})`
          : undefined,
    });
  });
}

export const WINDOW_FIELDS = [...AGGREGATES, 'late'] as const;

/** The keys every kind takes (built with the first kind's schema). */
export const commonSpecShape = lazily(() => ({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'expected 1-128 characters of [A-Za-z0-9._-]'),
  match: z
    .strictObject({
      device: z.string().regex(GLOB_RE).optional(),
      metric: z.string().regex(GLOB_RE).optional(),
    })
    .default({}),
  on: onSchema.default('reading'),
  severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  message: z.string().max(1024).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  /** on: window rules: which aggregate is the rule's `value` [mean]. */
  field: z.enum(WINDOW_FIELDS).optional(),
  /** After an episode resolves, the key does not fire again for this long (event time) [0]. */
  cooldown: durationSchema.optional(),
}));

/** A configuration problem found while building a rule, at `key` of the rule's spec. */
export class SpecError extends Error {
  override name = 'SpecError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Compiles a condition at spec key `key`, turning expression errors into SpecErrors. Each (expression,
 * scope) is compiled once per process (issue 13: check-config, the engine and a reload compiled it up to
 * three times): the compiled predicate is a pure function of the event's env, so sharing it is safe.
 */
export function conditionAt(key: string, source: string, scope: Scope): (env: Env) => boolean {
  const cacheKey = `${source}\u0000${[...scope].map(([n, t]) => `${n}:${t}`).join(',')}`;
  const hit = compiled.get(cacheKey);
  if (hit !== undefined) {
    if (hit instanceof ExprError) throw new SpecError(key, hit.message);
    return hit;
  }
  let out: ((env: Env) => boolean) | ExprError;
  try {
    out = compileCondition(source, scope);
  } catch (e) {
    if (!(e instanceof ExprError)) throw e;
    out = e;
  }
  if (compiled.size >= COMPILED_MAX) compiled.clear();
  compiled.set(cacheKey, out);
  if (out instanceof ExprError) throw new SpecError(key, out.message);
  return out;
}
/** Bounds the compile cache: a config has a few dozen expressions; reloads may bring new ones. */
const COMPILED_MAX = 1024;
const compiled = new Map<string, ((env: Env) => boolean) | ExprError>();

/** The keys every kind has (commonSpecShape), as the lifecycle reads them, plus `kind` and `for`. */
export type CommonSpec = z.output<z.ZodObject<ReturnType<typeof commonSpecShape>>> & {
  readonly kind: string;
  readonly for?: number;
};

/**
 * A rule kind (issue 13): `kind:` name, its spec schema (kindSchema: the common keys and its own), what
 * it does, and the builder of its detector. Pure computation, so the descriptor sits in the kind's own
 * file; agent/rules/registry.ts lists them.
 */
export interface RuleKindDescriptor<S extends z.ZodObject = z.ZodObject> extends Descriptor {
  readonly schema: S;
  /** One line for docs/agent-config.md. */
  readonly summary: string;
  readonly capabilities: {
    /** Gives each event an anomaly score in [0, 1] (the statistical kinds, issue 11). */
    readonly scores: boolean;
    /** Fires on processing time from tick() as well as on events (missing). */
    readonly timeBased: boolean;
  };
  /** Throws SpecError (key + message) for problems in its expressions. */
  build(spec: z.output<S>, scope: Scope): Built<unknown>;
}

/** What a kind's builder returns. */
export interface Built<S> {
  detector: Detector<S>;
  defaultMessage: string;
  /** `cooldown` when the spec has none, in ms [0] (the statistical kinds: stats.ts COOLDOWN_MS). */
  defaultCooldown?: number;
}

/** One event as a rule sees it: a reading, or a window summary reduced to the rule's `field`. */
export interface RuleEvent {
  device: string;
  metric: string;
  /** Event time (reading ts, or the window end for summaries), epoch ms. */
  ts: number;
  /** The reading's value, or the summary's `field` (null when the window had no data). */
  value: number | null;
  /** Expression scope values for this event. */
  env: Env;
}

/** What a detector concluded about one event (or one tick). */
export interface Verdict {
  /** The anomaly condition holds now. */
  active: boolean;
  /** The alert's value (defaults to the event's value). */
  value?: number | null;
  /** Event time at which the condition started to hold (flatline: start of the flat run); default now. */
  since?: number;
  /** Event time of the verdict when it comes from `tick()` (missing), not from an event. */
  ts?: number;
  /** The detector's anomaly score of this event in [0, 1] (statistical kinds; issue 11). */
  score?: number;
  /** Short human text for the message template's {detail}; a function when it costs formatting
   *  (it is only needed on a transition, not on every event). */
  detail?: string | (() => string);
}

/** What the lifecycle tells a detector along with an event. */
export interface UpdateContext {
  /** Monotonic clock now (processing time). */
  mono: number;
  /** The key's alert is firing (threshold's clearWhen applies only then). */
  firing: boolean;
}

/**
 * A kind's arithmetic. `S` must be plain JSON data (it is checkpointed with JSON.stringify), finite
 * numbers only. `update` may mutate `state`. Returning null means "no opinion" (warming up, skipped
 * event): the lifecycle keeps its current state.
 */
export interface Detector<S = unknown> {
  init(): S;
  update(state: S, ev: RuleEvent, ctx: UpdateContext): Verdict | null;
  /** Processing-time check (missing); called from RuleEngine.tick() with the monotonic clock. */
  tick?(state: S, mono: number): Verdict | null;
  /** State → checkpoint JSON when it holds monotonic instants (they do not survive a restart). */
  save?(state: S, mono: number): unknown;
  load?(json: unknown, mono: number): S;
}

export interface AlertContext {
  agentId: string;
  emit(a: Alert): void;
}

/** Lifecycle state of one (rule, device, metric) key. Plain JSON (checkpointed as is, except `det`). */
export interface KeyState<S = unknown> {
  device: string;
  metric: string;
  det: S;
  /** Event time the condition began to hold while not yet firing (`for` pending), else null. */
  pendingSince: number | null;
  /** The firing alert of the current episode, else null. */
  firing: Alert | null;
  /** Episode start (event time of the firing transition): the id of both transitions derives from it. */
  episodeStart: number | null;
  /** Event time before which a new episode may not fire (`cooldown` after the last one resolved). */
  quietUntil: number | null;
  /** Last window summary applied (on: window rules): revisions re-apply on `before`. */
  win: { start: number; end: number; rev: number; before: S } | null;
  /** The engine's change round in which this key was last named changed (engine.ts takeChanged);
   *  not checkpointed (keyToJSON names the fields it writes). */
  changedRound: number;
}

const MESSAGE_MAX = 4096;
export const MESSAGE_PLACEHOLDERS = [
  'rule',
  'device',
  'metric',
  'value',
  'severity',
  'state',
  'detail',
] as const;

export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'null';
  return String(Number(v.toPrecision(6)));
}

export function renderMessage(
  template: string,
  vars: Record<(typeof MESSAGE_PLACEHOLDERS)[number], string>,
): string {
  const out = template.replace(/\{(\w+)\}/g, (m, k: string) =>
    Object.hasOwn(vars, k) ? vars[k as keyof typeof vars] : m,
  );
  return out.length > MESSAGE_MAX ? out.slice(0, MESSAGE_MAX) : out;
}

/**
 * One configured rule: its spec, its detector and the lifecycle over all its keys. The engine routes
 * events to it; this class decides when an Alert is emitted.
 */
export class Rule<S = unknown> {
  readonly keys = new Map<string, KeyState<S>>();
  private readonly forMs: number;
  private readonly cooldownMs: number;
  private readonly template: string;
  /** Refilled per event, not made per event (issue 14, branch `rules`): detectors read it during
   *  update() only, and nothing in update() feeds another event to the same rule. */
  private readonly updateContext: UpdateContext = { mono: 0, firing: false };

  constructor(
    readonly spec: CommonSpec,
    readonly detector: Detector<S>,
    private readonly ctx: AlertContext,
    private readonly counters: { fired: number; resolved: number },
    defaultMessage: string,
    defaultCooldown = 0,
  ) {
    this.forMs = typeof spec.for === 'number' ? spec.for : 0;
    this.cooldownMs = spec.cooldown ?? defaultCooldown;
    this.template = spec.message ?? defaultMessage;
  }

  static keyOf(device: string, metric: string): string {
    return `${device}\u0000${metric}`;
  }

  state(device: string, metric: string): KeyState<S> {
    const k = Rule.keyOf(device, metric);
    let st = this.keys.get(k);
    if (!st) {
      st = {
        device,
        metric,
        det: this.detector.init(),
        pendingSince: null,
        firing: null,
        episodeStart: null,
        quietUntil: null,
        win: null,
        changedRound: -1,
      };
      this.keys.set(k, st);
    }
    return st;
  }

  /** Feeds one event of a key through the detector and the lifecycle; returns the event's score. */
  onEvent(st: KeyState<S>, ev: RuleEvent, mono: number): number | undefined {
    const uctx = this.updateContext;
    uctx.mono = mono;
    uctx.firing = st.firing !== null;
    const v = this.detector.update(st.det, ev, uctx);
    if (!v) return undefined;
    this.apply(st, v, ev.ts, ev.value);
    return v.score;
  }

  /** Time-based checks (missing). */
  onTick(mono: number): void {
    const tick = this.detector.tick;
    if (!tick) return;
    for (const st of this.keys.values()) {
      const v = tick.call(this.detector, st.det, mono);
      if (v) this.apply(st, v, v.ts ?? Number.NaN, null);
    }
  }

  /** The lifecycle: pending (`for`) → firing → resolved. Emits each transition once. */
  apply(st: KeyState<S>, v: Verdict, evTs: number, evValue: number | null): void {
    const ts = v.ts ?? evTs;
    if (!Number.isFinite(ts)) return;
    const value = v.value === undefined ? evValue : v.value;
    if (v.active) {
      if (st.firing) return; // firing is emitted once per episode, never repeated
      // Cooldown: no new episode until it has passed since the last one resolved (issue 11: a
      // burst of anomalous readings is one incident to an operator, not many).
      if (st.quietUntil !== null && ts < st.quietUntil) return;
      if (v.since !== undefined) st.pendingSince = v.since;
      else if (st.pendingSince === null) st.pendingSince = ts;
      // Exactly `for` long fires (>=): a 30s rule fires on the reading 30s after the condition began.
      if (ts - st.pendingSince < this.forMs) return;
      st.pendingSince = null;
      st.episodeStart = Math.trunc(ts);
      st.firing = this.alert(st, 'firing', ts, value, v.detail, v.score);
      this.counters.fired++;
      this.ctx.emit(st.firing);
      return;
    }
    st.pendingSince = null;
    if (!st.firing) return;
    const resolved = this.alert(st, 'resolved', Math.max(ts, st.firing.ts), value, v.detail, v.score);
    st.firing = null;
    st.episodeStart = null;
    if (this.cooldownMs > 0) st.quietUntil = resolved.ts + this.cooldownMs;
    this.counters.resolved++;
    this.ctx.emit(resolved);
  }

  /** Resolves a firing key without an event (rule removed or changed across a restart). */
  forceResolve(st: KeyState<S>, ts: number, detail: string): void {
    if (!st.firing) return;
    const resolved = this.alert(st, 'resolved', Math.max(ts, st.firing.ts), null, detail);
    st.firing = null;
    st.episodeStart = null;
    this.counters.resolved++;
    this.ctx.emit(resolved);
  }

  private alert(
    st: KeyState<S>,
    state: 'firing' | 'resolved',
    ts: number,
    value: number | null,
    detail: string | (() => string) | undefined,
    score?: number,
  ): Alert {
    const s = this.spec;
    const episode = st.episodeStart ?? Math.trunc(ts);
    const val = value !== null && Number.isFinite(value) ? value : null;
    return {
      id: alertId(this.ctx.agentId, s.name, st.device, st.metric, episode, state),
      device: st.device,
      metric: st.metric,
      rule: s.name,
      severity: s.severity,
      state,
      ts: Math.trunc(ts),
      value: val,
      ...(score !== undefined && Number.isFinite(score) ? { score: Math.min(1, Math.max(0, score)) } : {}),
      message: renderMessage(this.template, {
        rule: s.name,
        device: st.device,
        metric: st.metric,
        value: formatValue(val),
        severity: s.severity,
        state,
        detail:
          (typeof detail === 'function' ? detail() : detail) ??
          (state === 'firing' ? 'condition met' : 'condition cleared'),
      }),
      tags: { ...(s.tags ?? {}) },
    };
  }
}
