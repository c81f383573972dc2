// anomaly: a model per key that learns what the series normally does and scores how surprising each
// reading is (agent/rules/anomaly-model.ts, docs/design/anomaly.md). Fires while the score is at or
// above `threshold` (or while `when` holds, with `score` in scope); after an episode resolves the key
// stays quiet for `cooldown`. No score before `warmup` of event time.
//
// Defaults come from time spans and a false-alarm budget, not from fitting a benchmark (the design
// note says how each was chosen and what the NAB sweep showed about its sensitivity):
//   threshold 0.4   = a tail probability of 1e-4: at one reading a minute, about one chance
//                     alarm per key per week before the cooldown merges bursts
//   cooldown  6h    = the slow level's time constant: by then the model has absorbed a level shift,
//                     so one incident gives one alert
import { z } from 'zod';
import { durationSchema, parseDuration } from '../../shared/units.ts';
import { type AnomalyParams, type AnomalyState, anomalyInit, anomalyUpdate } from './anomaly-model.ts';
import { extendScope, type Scope } from './expr.ts';
import { type Built, conditionAt, formatValue, kindSchema, type RuleKindDescriptor } from './rule.ts';
import { COOLDOWN_MS } from './stats.ts';

const span = (d: string) => durationSchema.default(parseDuration(d));

export const anomalySpecSchema = kindSchema('anomaly', () => ({
  threshold: z.number().gt(0).max(1).default(0.4),
  when: z.string().optional(),
  warmup: span('1d'),
  minSamples: z.number().int().min(2).max(1_000_000).default(100),
  fast: span('15m'),
  slow: span('6h'),
  errorSpan: span('1d'),
  shortSpan: span('30m'),
  longSpan: span('7d'),
  profilePeriods: z.number().positive().max(1000).default(3),
  noveltyMargin: z.number().min(0).default(0),
  for: durationSchema.optional(),
}));
export type AnomalySpec = z.output<ReturnType<typeof anomalySpecSchema>>;

/** The spread a 30-minute mean of well-predicted raw scores has (design note, "Likelihood"). */
const SD_FLOOR = 0.2;

export function anomalyParams(spec: AnomalySpec): AnomalyParams {
  return {
    warmupMs: spec.warmup,
    minSamples: spec.minSamples,
    fastMs: spec.fast,
    slowMs: spec.slow,
    errorMs: spec.errorSpan,
    shortMs: spec.shortSpan,
    longMs: spec.longSpan,
    profilePeriods: spec.profilePeriods,
    noveltyMargin: spec.noveltyMargin,
    noveltyErrors: 1,
    sdFloor: SD_FLOOR,
  };
}

export function buildAnomaly(spec: AnomalySpec, scope: Scope): Built<AnomalyState> {
  const p = anomalyParams(spec);
  const when =
    spec.when === undefined ? null : conditionAt('when', spec.when, extendScope(scope, { score: 'number' }));
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    defaultCooldown: COOLDOWN_MS,
    detector: {
      init: anomalyInit,
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        const r = anomalyUpdate(s, p, ev.ts, x);
        if (r.score === null) return null;
        const score = r.score;
        const active = when ? when({ ...ev.env, score }) : score >= spec.threshold;
        return {
          active,
          value: x,
          score,
          detail: () =>
            `score ${formatValue(score)}, expected ${formatValue(r.predicted)}, error ${formatValue(r.error)} × usual`,
        };
      },
    },
  };
}

export const anomalyKind = {
  type: 'anomaly',
  get schema() {
    return anomalySpecSchema();
  },
  summary: 'a learned model per key scores how surprising each reading is; fires at or above `threshold`',
  capabilities: { scores: true, timeBased: false },
  build: buildAnomaly,
} as const satisfies RuleKindDescriptor<ReturnType<typeof anomalySpecSchema>>;
