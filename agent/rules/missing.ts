// missing: no data. Fires when a key that has been seen stays silent for `after`, measured on the
// monotonic clock (processing time: a sensor that stops sending produces no event time) and checked
// in RuleEngine.tick(). The firing alert's ts is the last event ts + `after` rather than the wall
// clock, so an unsynced gateway clock cannot stamp it in 1970 or next year. Resolves on the next event.
import type { z } from 'zod';
import { formatDuration } from '../../shared/units.ts';
import type { Scope } from './expr.ts';
import { type Built, duration, kindSchema, type RuleKindDescriptor } from './rule.ts';

export const missingSpecSchema = kindSchema('missing', () => ({
  after: duration('how long a key may stay silent, e.g. 2m'),
}));
export type MissingSpec = z.output<ReturnType<typeof missingSpecSchema>>;

interface State {
  lastMono: number;
  lastTs: number;
}

interface Saved {
  remainingMs: number;
  lastTs: number;
}

export function buildMissing(spec: MissingSpec, _scope: Scope): Built<State> {
  const after = spec.after;
  return {
    defaultMessage: '{rule} {state}: {device} {metric} ({detail})',
    detector: {
      init: () => ({ lastMono: 0, lastTs: 0 }),
      update(s, ev, { mono }) {
        s.lastMono = mono;
        s.lastTs = Math.max(s.lastTs, ev.ts);
        return { active: false, detail: 'data is back' };
      },
      tick(s, mono) {
        if (mono - s.lastMono < after) return null;
        return {
          active: true,
          value: null,
          ts: s.lastTs + after,
          detail: `no data for ${formatDuration(after)}`,
        };
      },
      // The monotonic origin changes across restarts: checkpoint the time left instead.
      save: (s, mono): Saved => ({ remainingMs: Math.max(0, after - (mono - s.lastMono)), lastTs: s.lastTs }),
      load(json, mono) {
        const j = json as Saved;
        if (typeof j?.remainingMs !== 'number' || typeof j.lastTs !== 'number')
          throw new TypeError('bad missing state');
        return { lastMono: mono - (after - j.remainingMs), lastTs: j.lastTs };
      },
    },
  };
}

export const missingKind = {
  type: 'missing',
  get schema() {
    return missingSpecSchema();
  },
  summary: 'no reading of a key for a duration (processing time)',
  capabilities: { scores: false, timeBased: true },
  build: buildMissing,
} as const satisfies RuleKindDescriptor<ReturnType<typeof missingSpecSchema>>;
