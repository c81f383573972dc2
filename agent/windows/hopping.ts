// Hopping windows: `[k*slide, k*slide + size)`, aligned to the Unix epoch (SPEC.md section 2, as in Flink's
// SlidingEventTimeWindows with offset 0). A reading belongs to every window whose range contains it, i.e.
// ceil(size/slide) windows or one fewer when size is not a multiple of slide.
import { shapeKey, type TimeAssigner, type WindowRange, type WindowTypeDescriptor } from './window.ts';

export class HoppingAssigner implements TimeAssigner {
  readonly kind = 'time';
  readonly type: 'hopping' | 'tumbling' = 'hopping';
  readonly merging = false;
  constructor(
    readonly size: number,
    readonly slide: number,
  ) {
    if (!(size > 0 && slide > 0 && slide <= size))
      throw new RangeError(`invalid hopping window size=${size} slide=${slide}`);
  }
  assign(ts: number): WindowRange[] {
    // Math.floor (not %) so timestamps before 1970 still land on multiples of slide.
    const last = Math.floor(ts / this.slide) * this.slide;
    const out: WindowRange[] = [];
    for (let start = last; start > ts - this.size; start -= this.slide)
      out.push({ start, end: start + this.size });
    return out.reverse();
  }
}

export const hoppingWindow: WindowTypeDescriptor = {
  type: 'hopping',
  summary: 'overlapping event-time windows of `size`, one starting every `slide`',
  keys: ['size', 'slide'],
  capabilities: { eventTime: true },
  check(w, problem) {
    if (w.size !== undefined && w.slide !== undefined && (w.slide <= 0 || w.slide > w.size))
      problem('slide', 'expected 0 < slide <= size');
  },
  assigner: (s) => new HoppingAssigner(shapeKey(s, 'size'), shapeKey(s, 'slide')),
};
