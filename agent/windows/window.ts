// The window-assigner contract (issue 3). Assigners are pure arithmetic: they say which windows a reading
// belongs to. Policy (watermarks, lateness, emission, bounded state, counters) lives once in engine.ts
// (STYLE.md: the running wrapper owns policy, plugins do arithmetic). Semantics: README.md beside this file.
import type { AggregateName, Summary } from '../../shared/model.ts';
import type { Descriptor } from '../../shared/registry.ts';

/**
 * A window's `type:`, the name of a window type in agent/windows/registry.ts. Summaries carry it on the
 * wire (SPEC.md 3, shared/model.ts), so a new type is a wire extension first, then a registry line.
 */
export type WindowType = Summary['window']['type'];

/** The keys that give a window its shape; each type takes some and refuses the others. */
export const WINDOW_SHAPE_KEYS = ['size', 'slide', 'gap', 'count'] as const;
export type WindowShapeKey = (typeof WINDOW_SHAPE_KEYS)[number];

/**
 * A window type (issue 13): `type:` name, the shape keys it takes, and its assigner. Assigners are pure
 * arithmetic, so the descriptor sits in the assigner's file; agent/windows/registry.ts lists them.
 */
export interface WindowTypeDescriptor extends Descriptor {
  readonly type: WindowType;
  /** One line for docs/agent-config.md. */
  readonly summary: string;
  /** Shape keys this type requires; the other shape keys must be absent. */
  readonly keys: readonly WindowShapeKey[];
  readonly capabilities: {
    /** Windows are intervals of event time (count windows are not: they close on the nth reading). */
    readonly eventTime: boolean;
  };
  /** Problems beyond presence of keys (hopping: 0 < slide <= size), reported at `key`. */
  check?(
    shape: Partial<Record<WindowShapeKey, number>>,
    problem: (key: WindowShapeKey, msg: string) => void,
  ): void;
  /** The assigner; the shape keys it needs are present (validated). */
  assigner(spec: WindowSpec): WindowAssigner;
}

/** A shape key the type requires (present after validation; a hand-written spec may lack it). */
export function shapeKey(spec: WindowSpec, key: WindowShapeKey): number {
  const v = spec[key];
  if (v === undefined)
    throw new RangeError(`window ${spec.name}: ${key} is required for ${spec.type} windows`);
  return v;
}

/**
 * One configured window, already validated by agent/config.ts (`WindowConfig` is assignable to it).
 * Durations are milliseconds.
 */
export interface WindowSpec {
  name: string;
  type: WindowType;
  /** tumbling, hopping */
  size?: number;
  /** hopping (0 < slide <= size) */
  slide?: number;
  /** session: a session closes once the watermark passes last event + gap */
  gap?: number;
  /** count: readings per window */
  count?: number;
  aggregates: readonly AggregateName[];
  allowedLateness: number;
  match: { device?: string; metric?: string };
  lateEvents: 'drop' | 'forward';
}

/** A half-open event-time interval `[start, end)`. */
export interface WindowRange {
  start: number;
  end: number;
}

/** Assigns a reading to event-time windows by its timestamp. */
export interface TimeAssigner {
  readonly kind: 'time';
  readonly type: 'tumbling' | 'hopping' | 'session';
  /**
   * true for session windows: the ranges returned by `assign` are proto-windows that the engine merges
   * with every open window of the same key they overlap.
   */
  readonly merging: boolean;
  /** Windows containing `ts`, ascending by start. Never empty. */
  assign(ts: number): WindowRange[];
}

/** Count windows ignore event time: every `count` readings of a key form one window. */
export interface CountAssigner {
  readonly kind: 'count';
  readonly type: 'count';
  readonly count: number;
}

export type WindowAssigner = TimeAssigner | CountAssigner;
