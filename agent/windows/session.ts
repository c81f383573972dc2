// Session windows: a reading at `ts` opens the proto-window `[ts, ts + gap)`; the engine merges it with
// every open window of the same key it overlaps, so a session is `[first ts, last ts + gap)` and closes
// once the watermark reaches last ts + gap (SPEC.md section 2). Overlap is strict (end exclusive): a
// reading exactly `gap` after the previous one starts a new session.
import { shapeKey, type TimeAssigner, type WindowRange, type WindowTypeDescriptor } from './window.ts';

export class SessionAssigner implements TimeAssigner {
  readonly kind = 'time';
  readonly type = 'session';
  readonly merging = true;
  constructor(readonly gap: number) {
    if (!(gap > 0)) throw new RangeError(`invalid session gap ${gap}`);
  }
  assign(ts: number): WindowRange[] {
    return [{ start: ts, end: ts + this.gap }];
  }
}

/** true when two half-open ranges share at least one instant. */
export function overlaps(a: WindowRange, b: WindowRange): boolean {
  return a.start < b.end && b.start < a.end;
}

export const sessionWindow: WindowTypeDescriptor = {
  type: 'session',
  summary: 'a window per burst of readings, closed after `gap` without one',
  keys: ['gap'],
  capabilities: { eventTime: true },
  assigner: (s) => new SessionAssigner(shapeKey(s, 'gap')),
};
