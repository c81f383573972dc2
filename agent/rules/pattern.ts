// pattern: `count` events matching `when` within `within` (event time), e.g. 3 failures in 5 minutes.
// The window is inclusive: events exactly `within` apart count together. Fires when the count
// reaches `count`; resolves, on a later event, when the matches inside the sliding window drop below
// `count` (event time only moves with events, so resolution waits for the next event of the key).
import { z } from 'zod';
import { durationSchema, formatDuration } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import {
  type Built,
  conditionAt,
  duration,
  expression,
  kindSchema,
  type RuleKindDescriptor,
} from './rule.ts';

export const patternSpecSchema = kindSchema('pattern', () => ({
  when: expression('the condition an event must meet to count, e.g. "value == 0"'),
  count: z
    .number({
      error: (iss) =>
        iss.input === undefined ? 'required: how many matching events fire the alert' : 'expected a number',
    })
    .int()
    .min(1)
    .max(100_000),
  within: duration('the sliding event-time window, e.g. 5m'),
  for: durationSchema.optional(),
}));
export type PatternSpec = z.output<ReturnType<typeof patternSpecSchema>>;

interface State {
  /** Event times of the most recent matches, ascending; at most `count` are needed. */
  hits: number[];
  maxTs: number | null;
}

export function buildPattern(spec: PatternSpec, scope: Scope): Built<State> {
  const when = conditionAt('when', spec.when, scope);
  const desc = `${spec.count} × (${spec.when}) within ${formatDuration(spec.within)}`;
  return {
    defaultMessage: '{rule} {state}: {device} {metric} ({detail})',
    detector: {
      init: () => ({ hits: [], maxTs: null }),
      update(s, ev) {
        const now = s.maxTs === null ? ev.ts : Math.max(s.maxTs, ev.ts);
        s.maxTs = now;
        if (when(ev.env)) {
          s.hits.push(ev.ts);
          if (s.hits.length > 1 && ev.ts < s.hits[s.hits.length - 2]!) s.hits.sort((a, b) => a - b);
          if (s.hits.length > spec.count) s.hits.splice(0, s.hits.length - spec.count);
        }
        const from = now - spec.within;
        while (s.hits.length > 0 && s.hits[0]! < from) s.hits.shift();
        const active = s.hits.length >= spec.count;
        return { active, detail: () => `${s.hits.length} of ${desc}` };
      },
    },
  };
}

export const patternKind = {
  type: 'pattern',
  get schema() {
    return patternSpecSchema();
  },
  summary: '`count` events matching `when` within `within` (e.g. 3 failures in 5 minutes)',
  capabilities: { scores: false, timeBased: false },
  build: buildPattern,
} as const satisfies RuleKindDescriptor<ReturnType<typeof patternSpecSchema>>;
