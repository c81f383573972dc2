// flatline: a stuck sensor. Fires when the value has stayed within `tolerance` of the first value of
// the current run for `for` (event time; exactly `for` long fires); resolves on the first value that
// leaves the tolerance, which also starts a new run. Comparing against the run's first value (not the
// previous value) means a slow drift in steps smaller than the tolerance still counts as a change.
import { z } from 'zod';
import type { Scope } from './expr.ts';
import { type Built, duration, formatValue, kindSchema, type RuleKindDescriptor } from './rule.ts';

export const flatlineSpecSchema = kindSchema('flatline', () => ({
  for: duration('how long the value must stay unchanged, e.g. 10m'),
  tolerance: z.number().min(0).default(0),
}));
export type FlatlineSpec = z.output<ReturnType<typeof flatlineSpecSchema>>;

interface State {
  anchor: number | null;
  since: number;
}

export function buildFlatline(spec: FlatlineSpec, _scope: Scope): Built<State> {
  return {
    defaultMessage: '{rule} {state}: {device} {metric} ({detail})',
    detector: {
      init: () => ({ anchor: null, since: 0 }),
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        if (s.anchor === null || Math.abs(x - s.anchor) > spec.tolerance) {
          s.anchor = x;
          s.since = ev.ts;
          return { active: false, value: x, detail: () => `value changed to ${formatValue(x)}` };
        }
        const anchor = s.anchor;
        return { active: true, since: s.since, value: x, detail: () => `stuck at ${formatValue(anchor)}` };
      },
    },
  };
}

export const flatlineKind = {
  type: 'flatline',
  get schema() {
    return flatlineSpecSchema();
  },
  summary: 'the value has not changed for a duration',
  capabilities: { scores: false, timeBased: false },
  build: buildFlatline,
} as const satisfies RuleKindDescriptor<ReturnType<typeof flatlineSpecSchema>>;
