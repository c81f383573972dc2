// rate: change per second between consecutive readings of a key, in event time, tested by `when`
// with the extra identifier `rate` (e.g. "abs(rate) > 5"). The alert value is the rate.
// A reading that is not newer than the previous one (duplicate or out of order) is skipped: it gives
// no rate and does not become the new reference.
import type { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import { extendScope, type Scope } from './expr.ts';
import { type Built, conditionAt, expression, formatValue, kindSchema } from './rule.ts';

export const rateSpecSchema = kindSchema('rate', {
  when: expression('a condition on the rate per second, e.g. "abs(rate) > 5"'),
  for: durationSchema.optional(),
});
export type RateSpec = z.output<typeof rateSpecSchema>;

interface State {
  prevTs: number | null;
  prevValue: number;
}

export function buildRate(spec: RateSpec, scope: Scope): Built<State> {
  const when = conditionAt('when', spec.when, extendScope(scope, { rate: 'number' }));
  return {
    defaultMessage: '{rule} {state}: {device} {metric} changing at {value}/s ({detail})',
    detector: {
      init: () => ({ prevTs: null, prevValue: 0 }),
      update(s, ev) {
        if (ev.value === null) return null;
        if (s.prevTs === null) {
          s.prevTs = ev.ts;
          s.prevValue = ev.value;
          return null;
        }
        const dt = (ev.ts - s.prevTs) / 1000;
        if (dt <= 0) return null;
        const rate = (ev.value - s.prevValue) / dt;
        s.prevTs = ev.ts;
        s.prevValue = ev.value;
        const active = when({ ...ev.env, rate });
        return {
          active,
          value: rate,
          detail: () => `rate=${formatValue(rate)}/s, ${active ? spec.when : `not ${spec.when}`}`,
        };
      },
    },
  };
}
