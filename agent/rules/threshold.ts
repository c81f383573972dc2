// threshold: a condition on each reading (or window summary), with hysteresis and `for`.
//   when: "value > 80"          fire when true (for `for` long, in event time)
//   clearWhen: "value < 75"     optional: once latched, stay latched until this is true
//                               (default: until `when` is false). Hysteresis stops a value hovering
//                               around the limit from flapping firing/resolved.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import { type Built, conditionAt, expression, kindSchema } from './rule.ts';

export const thresholdSpecSchema = kindSchema('threshold', {
  when: expression('the alert condition, e.g. "value > 80"'),
  clearWhen: z.string().optional(),
  for: durationSchema.optional(),
});
export type ThresholdSpec = z.output<typeof thresholdSpecSchema>;

interface State {
  latched: boolean;
}

export function buildThreshold(spec: ThresholdSpec, scope: Scope): Built<State> {
  const when = conditionAt('when', spec.when, scope);
  const clearWhen = spec.clearWhen === undefined ? null : conditionAt('clearWhen', spec.clearWhen, scope);
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    detector: {
      init: () => ({ latched: false }),
      update(s, ev) {
        if (!s.latched) s.latched = when(ev.env);
        else s.latched = clearWhen ? !clearWhen(ev.env) : when(ev.env);
        return { active: s.latched, detail: s.latched ? spec.when : (spec.clearWhen ?? `not ${spec.when}`) };
      },
    },
  };
}
