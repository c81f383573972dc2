// spike: robust outlier test against the median and MAD of the last `window` accepted values:
//   score = |x - median| / (1.4826 * MAD)      (1.4826·MAD estimates σ for normal data)
// Fires when score > threshold. Default 5, not the 3.5 of Iglewicz and Hoaglin's modified z-score:
// that cut-off labels outliers in one data set, but on a stream with a 30-value baseline it alarms on
// ~0.5% of plain Gaussian noise (measured); 5 over 60 values gives ~1 per 10,000.
// resolves on the next value that is not an outlier. An outlier is NOT added to the baseline, so one
// outlier cannot widen the MAD and mask the next one. A level shift would then be an outlier forever:
// after `adaptAfter` consecutive outliers they are admitted to the baseline (the level moved; that is
// changepoint's business), 0 = never. MAD 0 (constant baseline): any different value fires.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import {
  madOfSorted,
  medianOfSorted,
  type Ring,
  ringInit,
  ringPush,
  sortedInsert,
  sortedRemove,
} from './ring.ts';
import { type Built, formatValue, kindSchema } from './rule.ts';

export const spikeSpecSchema = kindSchema('spike', {
  window: z.number().int().min(3).max(10_000).default(60),
  threshold: z.number().positive().default(5),
  warmup: z.number().int().min(3).optional(),
  adaptAfter: z.number().int().min(0).optional(),
  for: durationSchema.optional(),
});
export type SpikeSpec = z.output<typeof spikeSpecSchema>;

interface State {
  ring: Ring;
  /** The ring's values in ascending order (median and MAD in O(window) per value, no sorting). */
  sorted: number[];
  /** Consecutive outliers not (yet) admitted to the baseline. */
  outliers: number[];
}

export function buildSpike(spec: SpikeSpec, _scope: Scope): Built<State> {
  const warmup = Math.min(spec.warmup ?? spec.window, spec.window);
  const adaptAfter = spec.adaptAfter ?? spec.window;
  const admit = (s: State, x: number) => {
    const old = ringPush(s.ring, spec.window, x);
    if (old !== undefined) sortedRemove(s.sorted, old);
    sortedInsert(s.sorted, x);
  };
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    detector: {
      init: () => ({ ring: ringInit(), sorted: [], outliers: [] }),
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        if (s.ring.buf.length < warmup) {
          admit(s, x);
          return null;
        }
        const med = medianOfSorted(s.sorted);
        const mad = madOfSorted(s.sorted, med);
        const dev = Math.abs(x - med);
        const scale = 1.4826 * mad;
        const score = scale > 0 ? dev / scale : dev === 0 ? 0 : Number.POSITIVE_INFINITY;
        const active = score > spec.threshold;
        if (active) {
          s.outliers.push(x);
          if (adaptAfter > 0 && s.outliers.length >= adaptAfter) {
            for (const o of s.outliers) admit(s, o);
            s.outliers = [];
          }
        } else {
          admit(s, x);
          s.outliers = [];
        }
        return {
          active,
          value: x,
          detail: () =>
            `score=${Number.isFinite(score) ? formatValue(score) : 'inf'} vs median ${formatValue(med)}, threshold ${spec.threshold}`,
        };
      },
    },
  };
}
