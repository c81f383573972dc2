// rate: change per second between consecutive readings of a key, in event time, tested by `when`
// with the extra identifier `rate` (e.g. "abs(rate) > 5"). The alert value is the rate.
// `scaled: true` makes the rate scale-free (issue 11): the rate in units of the series' own typical
// rate, the exponentially weighted mean of |rate| over `span` (event time) before this reading, so
// "abs(rate) > 5" means "changing five times faster than it usually does" on any unit and sample
// rate. No verdict before `span` has passed. The typical rate is floored at the series' quantum per
// second (a quantised series moves in whole steps).
// A reading that is not newer than the previous one (duplicate or out of order) is skipped: it gives
// no rate and does not become the new reference.
import { z } from 'zod';
import { durationSchema, parseDuration } from '../../shared/units.ts';
import { extendScope, type Scope } from './expr.ts';
import {
  type Built,
  conditionAt,
  expression,
  formatValue,
  kindSchema,
  type RuleKindDescriptor,
} from './rule.ts';
import { quantumAfter, spreadFloor } from './stats.ts';

export const rateSpecSchema = kindSchema('rate', () => ({
  when: expression('a condition on the rate per second, e.g. "abs(rate) > 5"'),
  scaled: z.boolean().default(false),
  span: durationSchema.default(parseDuration('1h')),
  for: durationSchema.optional(),
}));
export type RateSpec = z.output<ReturnType<typeof rateSpecSchema>>;

interface State {
  prevTs: number | null;
  prevValue: number;
  firstTs: number;
  typical: number;
  quantum: number;
}

export function buildRate(spec: RateSpec, scope: Scope): Built<State> {
  const when = conditionAt('when', spec.when, extendScope(scope, { rate: 'number' }));
  return {
    defaultMessage: spec.scaled
      ? '{rule} {state}: {device} {metric} changing at {value}× its usual rate ({detail})'
      : '{rule} {state}: {device} {metric} changing at {value}/s ({detail})',
    detector: {
      init: () => ({ prevTs: null, prevValue: 0, firstTs: 0, typical: 0, quantum: 0 }),
      update(s, ev) {
        if (ev.value === null) return null;
        if (s.prevTs === null) {
          s.prevTs = ev.ts;
          s.prevValue = ev.value;
          s.firstTs = ev.ts;
          return null;
        }
        const dtMs = ev.ts - s.prevTs;
        if (dtMs <= 0) return null;
        const perSecond = (ev.value - s.prevValue) / (dtMs / 1000);
        let rate = perSecond;
        if (spec.scaled) {
          const floor = spreadFloor(0, s.quantum, s.prevValue) / (dtMs / 1000);
          rate = perSecond / Math.max(s.typical, floor);
          s.typical += (1 - Math.exp(-dtMs / spec.span)) * (Math.abs(perSecond) - s.typical);
          s.quantum = quantumAfter(s.quantum, s.prevValue, ev.value);
        }
        s.prevTs = ev.ts;
        s.prevValue = ev.value;
        if (spec.scaled && ev.ts - s.firstTs < spec.span) return null;
        const active = when({ ...ev.env, rate });
        return {
          active,
          value: rate,
          detail: () =>
            `rate=${formatValue(rate)}${spec.scaled ? '× usual' : '/s'}, ${active ? spec.when : `not ${spec.when}`}`,
        };
      },
    },
  };
}

export const rateKind = {
  type: 'rate',
  get schema() {
    return rateSpecSchema();
  },
  summary: 'change per second between consecutive readings of a key, tested by `when` (`rate`)',
  capabilities: { scores: false, timeBased: false },
  build: buildRate,
} as const satisfies RuleKindDescriptor<ReturnType<typeof rateSpecSchema>>;
