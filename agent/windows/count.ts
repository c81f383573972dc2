// Count windows: every `count` readings of one (window, device, metric) key, in arrival order (event time
// plays no part). A partial window is flushed when its device goes idle (engine.ts, README.md).
import { type CountAssigner, shapeKey, type WindowTypeDescriptor } from './window.ts';

export class CountWindowAssigner implements CountAssigner {
  readonly kind = 'count';
  readonly type = 'count';
  constructor(readonly count: number) {
    if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`invalid count window size ${count}`);
  }
}

export const countWindow: WindowTypeDescriptor = {
  type: 'count',
  summary: 'every `count` readings of a key make one window',
  keys: ['count'],
  capabilities: { eventTime: false },
  assigner: (s) => new CountWindowAssigner(shapeKey(s, 'count')),
};
