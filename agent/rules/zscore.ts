// zscore: how many standard deviations a value lies from its recent baseline.
//   mode: rolling   mean/std of the previous `window` values (the value itself is not in its baseline)
//   mode: ewma      exponentially weighted mean/variance with smoothing `alpha`
// Fires while |z| > threshold (strictly); resolves when |z| <= threshold. Every value, anomalous or
// not, then joins the baseline (use `spike` for a baseline that ignores outliers). No verdict before
// `warmup` values have been seen. A zero std (constant baseline) is raised to `minStd`; if that is 0
// too, any different value has an infinite z and fires.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import { mean, type Ring, ringInit, ringPush, stddev } from './ring.ts';
import { type Built, formatValue, kindSchema } from './rule.ts';

export const zscoreSpecSchema = kindSchema('zscore', {
  mode: z.enum(['rolling', 'ewma']).default('rolling'),
  window: z.number().int().min(2).max(10_000).default(60),
  alpha: z.number().gt(0).lt(1).default(0.1),
  threshold: z.number().positive().default(3),
  warmup: z.number().int().min(2).max(1_000_000).optional(),
  minStd: z.number().min(0).default(0),
  for: durationSchema.optional(),
});
export type ZscoreSpec = z.output<typeof zscoreSpecSchema>;

interface State {
  n: number;
  ring: Ring;
  ewMean: number;
  ewVar: number;
}

export function buildZscore(spec: ZscoreSpec, _scope: Scope): Built<State> {
  const warmup = spec.warmup ?? (spec.mode === 'rolling' ? spec.window : 30);
  const a = spec.alpha;
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    detector: {
      init: () => ({ n: 0, ring: ringInit(), ewMean: 0, ewVar: 0 }),
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        let m: number;
        let sd: number;
        if (spec.mode === 'rolling') {
          m = s.ring.buf.length > 0 ? mean(s.ring.buf) : x;
          sd = stddev(s.ring.buf, m);
          ringPush(s.ring, spec.window, x);
        } else {
          m = s.n > 0 ? s.ewMean : x;
          sd = Math.sqrt(s.ewVar);
          if (s.n === 0) {
            s.ewMean = x;
            s.ewVar = 0;
          } else {
            const d = x - s.ewMean;
            s.ewMean += a * d;
            s.ewVar = (1 - a) * (s.ewVar + a * d * d);
          }
        }
        const seen = s.n;
        s.n = Math.min(s.n + 1, Number.MAX_SAFE_INTEGER);
        if (seen < warmup) return null;
        sd = Math.max(sd, spec.minStd);
        const dev = x - m;
        const z = sd > 0 ? dev / sd : dev === 0 ? 0 : Math.sign(dev) * Number.POSITIVE_INFINITY;
        const active = Math.abs(z) > spec.threshold;
        return {
          active,
          value: x,
          detail: () => `z=${Number.isFinite(z) ? formatValue(z) : String(z)}, threshold ${spec.threshold}`,
        };
      },
    },
  };
}
