// threshold: a condition on each reading (or window summary), with hysteresis and `for`.
//   when: "value > 80"          fire when true (for `for` long, in event time)
//   clearWhen: "value < 75"     optional: once *firing*, stay firing until this is true (default:
//                               until `when` is false). Hysteresis stops a value hovering around
//                               the limit from flapping firing/resolved. Before firing, `when` must
//                               hold on every event for `for`; clearWhen plays no part there.
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import { type Built, conditionAt, expression, kindSchema, type RuleKindDescriptor } from './rule.ts';

export const thresholdSpecSchema = kindSchema('threshold', () => ({
  when: expression('the alert condition, e.g. "value > 80"'),
  clearWhen: z.string().optional(),
  for: durationSchema.optional(),
}));
export type ThresholdSpec = z.output<ReturnType<typeof thresholdSpecSchema>>;

type State = Record<string, never>;

export function buildThreshold(spec: ThresholdSpec, scope: Scope): Built<State> {
  const when = conditionAt('when', spec.when, scope);
  const clearWhen = spec.clearWhen === undefined ? null : conditionAt('clearWhen', spec.clearWhen, scope);
  const cleared = spec.clearWhen ?? `not (${spec.when})`;
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    detector: {
      init: () => ({}),
      update(_s, ev, { firing }) {
        const active = firing && clearWhen ? !clearWhen(ev.env) : when(ev.env);
        return { active, detail: active ? spec.when : cleared };
      },
    },
  };
}

export const thresholdKind = {
  type: 'threshold',
  get schema() {
    return thresholdSpecSchema();
  },
  summary: 'a condition on each reading or window summary, with hysteresis (clearWhen) and for',
  capabilities: { scores: false, timeBased: false },
  build: buildThreshold,
} as const satisfies RuleKindDescriptor<ReturnType<typeof thresholdSpecSchema>>;
