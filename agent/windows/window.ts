// The window-assigner contract (issue 3). Assigners are pure arithmetic: they say which windows a reading
// belongs to. Policy (watermarks, lateness, emission, bounded state, counters) lives once in engine.ts
// (STYLE.md: the running wrapper owns policy, plugins do arithmetic). Semantics: README.md beside this file.
import type { AggregateName } from '../../shared/model.ts';

export type WindowType = 'tumbling' | 'hopping' | 'session' | 'count';

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
