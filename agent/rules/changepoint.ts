// changepoint: two-sided CUSUM for a level shift. The first `warmup` values estimate the reference
// mean μ and std σ; then for each value z = (x-μ)/σ and
//   S+ = max(0, S+ + z - k)      S- = max(0, S- - z - k)
// Fires when S+ > h (shift up) or S- > h (shift down); `k` (slack) and `h` (decision limit) are in
// units of σ. Defaults k=0.5, h=10: a 2σ shift is found in about (h+1.17)/(2-k) ≈ 7 samples, a 1σ
// shift in about 22, and stationary noise alarms rarely (measured: ~1 per 12,000 samples with a
// 100-sample warm-up; the textbook h=5 alarms every few hundred, far too often for a 1 Hz sensor).
// After firing the sums reset and a new warm-up learns the new level. A changepoint is a point event:
// the alert fires on the detecting value and resolves on the next value. The score is max(S+, S-)/h
// capped at 1 (1 at the decision limit), and `when` may test it (`score`). `warmup` is a count of
// readings or a duration; σ is floored (stats.ts spreadFloor) so a constant warm-up gives finite sums.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import { extendScope, type Scope } from './expr.ts';
import { type Built, conditionAt, formatValue, kindSchema, type RuleKindDescriptor } from './rule.ts';
import { COOLDOWN_MS, quantumAfter, spanSchema, spreadFloor } from './stats.ts';

export const changepointSpecSchema = kindSchema('changepoint', () => ({
  warmup: spanSchema(2, 1_000_000).default({ count: 100 }),
  when: z.string().optional(),
  k: z.number().min(0).default(0.5),
  h: z.number().positive().default(10),
  minStd: z.number().min(0).default(0),
  for: durationSchema.optional(),
}));
export type ChangepointSpec = z.output<ReturnType<typeof changepointSpecSchema>>;

interface State {
  n: number;
  firstTs: number | null;
  prev: number | null;
  quantum: number;
  sum: number;
  sumSq: number;
  mu: number;
  sigma: number;
  sPos: number;
  sNeg: number;
}

const fresh = (): State => ({
  n: 0,
  firstTs: null,
  prev: null,
  quantum: 0,
  sum: 0,
  sumSq: 0,
  mu: 0,
  sigma: 0,
  sPos: 0,
  sNeg: 0,
});

export function buildChangepoint(spec: ChangepointSpec, scope: Scope): Built<State> {
  const when =
    spec.when === undefined ? null : conditionAt('when', spec.when, extendScope(scope, { score: 'number' }));
  const learnt = (s: State, ts: number) =>
    'count' in spec.warmup
      ? s.n >= spec.warmup.count
      : s.firstTs !== null && ts - s.firstTs >= spec.warmup.ms;
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    defaultCooldown: COOLDOWN_MS,
    detector: {
      init: fresh,
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        if (s.sigma === 0) {
          if (s.firstTs === null) s.firstTs = ev.ts;
          s.n++;
          s.sum += x;
          s.sumSq += x * x;
          s.quantum = quantumAfter(s.quantum, s.prev, x);
          s.prev = x;
          if (s.n >= 2 && learnt(s, ev.ts)) {
            s.mu = s.sum / s.n;
            const v = (s.sumSq - s.n * s.mu * s.mu) / (s.n - 1);
            s.sigma = Math.max(Math.sqrt(Math.max(0, v)), spreadFloor(spec.minStd, s.quantum, s.mu));
          }
          return { active: false, value: x, score: 0, detail: 'learning the level' };
        }
        const z = (x - s.mu) / s.sigma;
        s.sPos = Math.max(0, s.sPos + z - spec.k);
        s.sNeg = Math.max(0, s.sNeg - z - spec.k);
        const score = Math.min(1, Math.max(s.sPos, s.sNeg) / spec.h);
        const shift = s.sPos > spec.h || s.sNeg > spec.h;
        const active = when ? when({ ...ev.env, score }) : shift;
        if (active || shift) {
          const dir = s.sPos >= s.sNeg ? 'up' : 'down';
          const detail = `level shift ${dir} from ${formatValue(s.mu)} (σ ${formatValue(s.sigma)})`;
          // A detected shift starts a new warm-up on the new level.
          if (shift) Object.assign(s, fresh());
          return { active, value: x, score, detail };
        }
        return { active: false, value: x, score, detail: 'level stable' };
      },
    },
  };
}

export const changepointKind = {
  type: 'changepoint',
  get schema() {
    return changepointSpecSchema();
  },
  summary: 'a level shift, two-sided CUSUM',
  capabilities: { scores: true, timeBased: false },
  build: buildChangepoint,
} as const satisfies RuleKindDescriptor<ReturnType<typeof changepointSpecSchema>>;
