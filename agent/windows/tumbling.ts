// Tumbling windows: `[k*size, (k+1)*size)`, aligned to the Unix epoch (SPEC.md section 2).
import { HoppingAssigner } from './hopping.ts';
import { shapeKey, type TimeAssigner, type WindowRange, type WindowTypeDescriptor } from './window.ts';

export class TumblingAssigner implements TimeAssigner {
  readonly kind = 'time';
  readonly type = 'tumbling';
  readonly merging = false;
  private readonly hop: HoppingAssigner;
  constructor(readonly size: number) {
    // A tumbling window is a hopping window whose slide equals its size; one arithmetic, one set of tests.
    this.hop = new HoppingAssigner(size, size);
  }
  assign(ts: number): WindowRange[] {
    return this.hop.assign(ts);
  }
}

export const tumblingWindow: WindowTypeDescriptor = {
  type: 'tumbling',
  summary: 'fixed, non-overlapping event-time windows of `size`, aligned to the epoch',
  keys: ['size'],
  capabilities: { eventTime: true },
  assigner: (s) => new TumblingAssigner(shapeKey(s, 'size')),
};
