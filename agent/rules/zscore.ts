// zscore: how many standard deviations a value lies from its recent baseline.
//   mode: rolling   mean/std of the values in the last `window` (a count of readings, or a duration;
//                   the value itself is not in its baseline), kept in O(1) per reading
//   mode: ewma      exponentially weighted mean/variance with smoothing `alpha`
// Fires while |z| > threshold (strictly), or while `when` holds (`score` and `z` in scope); resolves
// otherwise. The score is P(|Z| < |z|) for a normal Z, in [0, 1] (z = 3 scores 0.9973). Every value
// then joins the baseline (use `spike` for a baseline that ignores outliers). No verdict before
// `warmup` (readings or a duration). The std is floored (stats.ts spreadFloor: `minStd`, the
// series' quantum, a millionth of the level), so constant and quantised series give finite scores.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import { extendScope, type Scope } from './expr.ts';
import {
  type Built,
  conditionAt,
  formatValue,
  kindSchema,
  type RuleKindDescriptor,
  type Verdict,
} from './rule.ts';
import {
  COOLDOWN_MS,
  type Moments,
  momentsAdd,
  momentsInit,
  momentsRebuild,
  momentsRemove,
  momentsStd,
  quantumAfter,
  type SlidingWindow,
  spanReached,
  spanSchema,
  spreadFloor,
  twoSidedScore,
  windowInit,
  windowPush,
  windowSize,
} from './stats.ts';

const MAX_WINDOW = 10_000;

export const zscoreSpecSchema = kindSchema('zscore', () => ({
  mode: z.enum(['rolling', 'ewma']).default('rolling'),
  window: spanSchema(2, MAX_WINDOW).default({ count: 60 }),
  alpha: z.number().gt(0).lt(1).default(0.1),
  threshold: z.number().positive().default(4),
  when: z.string().optional(),
  warmup: spanSchema(2, 1_000_000).optional(),
  minStd: z.number().min(0).default(0),
  for: durationSchema.optional(),
}));
export type ZscoreSpec = z.output<ReturnType<typeof zscoreSpecSchema>>;

interface State {
  n: number;
  firstTs: number | null;
  prev: number | null;
  quantum: number;
  win: SlidingWindow;
  mom: Moments;
  ewMean: number;
  ewVar: number;
}

/**
 * A verdict whose detail text is formatted only when read (on a transition, rule.ts), from a class made
 * once instead of a closure made per reading (issue 14: a closure per reading, and under tsx a `__name`
 * call per closure, were 3 % of the pipeline bench).
 */
class ZscoreVerdict implements Verdict {
  constructor(
    readonly active: boolean,
    readonly value: number,
    readonly score: number,
    private readonly z: number,
    private readonly threshold: number,
  ) {}
  get detail(): string {
    return `z=${formatValue(this.z)}, threshold ${this.threshold}`;
  }
}

export function buildZscore(spec: ZscoreSpec, scope: Scope): Built<State> {
  const warmup = spec.warmup ?? (spec.mode === 'rolling' ? spec.window : { count: 30 });
  const a = spec.alpha;
  const when =
    spec.when === undefined
      ? null
      : conditionAt('when', spec.when, extendScope(scope, { score: 'number', z: 'number' }));
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    defaultCooldown: COOLDOWN_MS,
    detector: {
      init: () => ({
        n: 0,
        firstTs: null,
        prev: null,
        quantum: 0,
        win: windowInit(),
        mom: momentsInit(),
        ewMean: 0,
        ewVar: 0,
      }),
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        let m: number;
        let sd: number;
        if (spec.mode === 'rolling') {
          m = s.mom.n > 0 ? s.mom.mean : x;
          sd = momentsStd(s.mom);
          windowPush(s.win, spec.window, MAX_WINDOW, ev.ts, x, momentsRemove, s.mom);
          momentsAdd(s.mom, x);
          if (s.mom.removed >= windowSize(s.win)) momentsRebuild(s.mom, s.win);
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
        const quantum = s.quantum;
        s.quantum = quantumAfter(s.quantum, s.prev, x);
        s.prev = x;
        if (s.firstTs === null) s.firstTs = ev.ts;
        const seen = s.n;
        s.n = Math.min(s.n + 1, Number.MAX_SAFE_INTEGER);
        if (!spanReached(warmup, seen, s.firstTs, ev.ts) || seen === 0) return null;
        sd = Math.max(sd, spreadFloor(spec.minStd, quantum, m));
        const zv = (x - m) / sd;
        const score = twoSidedScore(zv);
        const active = when ? when({ ...ev.env, score, z: zv }) : Math.abs(zv) > spec.threshold;
        return new ZscoreVerdict(active, x, score, zv, spec.threshold);
      },
    },
  };
}

export const zscoreKind = {
  type: 'zscore',
  get schema() {
    return zscoreSpecSchema();
  },
  summary: 'distance from the rolling mean in standard deviations',
  capabilities: { scores: true, timeBased: false },
  build: buildZscore,
} as const satisfies RuleKindDescriptor<ReturnType<typeof zscoreSpecSchema>>;
