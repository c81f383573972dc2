// spike: robust outlier test against the median and MAD of the last `window` accepted values:
//   score = |x - median| / (1.4826 * MAD)      (1.4826·MAD estimates σ for normal data)
// Fires when score > threshold. Default 5, not the 3.5 of Iglewicz and Hoaglin's modified z-score:
// that cut-off labels outliers in one data set, but on a stream with a 30-value baseline it alarms on
// ~0.5% of plain Gaussian noise (measured); 5 over 60 values gives ~1 per 10,000.
// resolves on the next value that is not an outlier. An outlier is NOT added to the baseline, so one
// outlier cannot widen the MAD and mask the next one. A level shift would then be an outlier forever:
// after `adaptAfter` consecutive outliers they are admitted to the baseline (the level moved; that is
// changepoint's business), 0 = never. The MAD-based scale is floored (stats.ts spreadFloor: the series'
// quantum, a millionth of the level; issue 11: on a quantised series with most values equal the MAD
// is 0 and every other value used to score infinity). `window` is a count of readings (at most
// 10,000) or a duration; the score in [0, 1] is P(|Z| < robust z), and `when` may test it (`score`).
import { z } from 'zod';
import { durationSchema } from '../../shared/units.ts';
import { extendScope, type Scope } from './expr.ts';
import { madOfSorted, medianOfSorted, sortedInsert, sortedRemove, sortedReplace } from './ring.ts';
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
  quantumAfter,
  type SlidingWindow,
  type Span,
  spanSchema,
  spreadFloor,
  twoSidedScore,
  windowInit,
  windowPush,
  windowSize,
} from './stats.ts';

const MAX_WINDOW = 10_000;

export const spikeSpecSchema = kindSchema('spike', () => ({
  window: spanSchema(3, MAX_WINDOW).default({ count: 60 }),
  threshold: z.number().positive().default(5),
  when: z.string().optional(),
  warmup: z.number().int().min(3).optional(),
  adaptAfter: z.number().int().min(0).optional(),
  for: durationSchema.optional(),
}));
export type SpikeSpec = z.output<ReturnType<typeof spikeSpecSchema>>;

interface State {
  win: SlidingWindow;
  prev: number | null;
  quantum: number;
  /** The ring's values in ascending order (median and MAD in O(window) per value, no sorting). */
  sorted: number[];
  /** Consecutive outliers not (yet) admitted to the baseline. */
  outliers: number[];
}

/** windowPush's eviction when sortedReplace does the sorted values' part. */
const keepSorted = (_sorted: number[], _v: number): void => {};

/** Readings a span stands for when a count is needed (warm-up, adaptAfter): a duration means 30. */
const countOf = (span: Span): number => ('count' in span ? span.count : 30);

/** Detail formatted only when read, from a class made once (as zscore.ts's ZscoreVerdict, issue 14). */
class SpikeVerdict implements Verdict {
  constructor(
    readonly active: boolean,
    readonly value: number,
    readonly score: number,
    private readonly robust: number,
    private readonly median: number,
    private readonly threshold: number,
  ) {}
  get detail(): string {
    return `score=${formatValue(this.robust)} vs median ${formatValue(this.median)}, threshold ${this.threshold}`;
  }
}

export function buildSpike(spec: SpikeSpec, scope: Scope): Built<State> {
  const warmup = Math.min(spec.warmup ?? countOf(spec.window), countOf(spec.window));
  const adaptAfter = spec.adaptAfter ?? countOf(spec.window);
  const when =
    spec.when === undefined ? null : conditionAt('when', spec.when, extendScope(scope, { score: 'number' }));
  const span = spec.window;
  const admit = (s: State, ts: number, x: number) => {
    const w = s.win;
    if ('count' in span && windowSize(w) === span.count) {
      // A full count window evicts exactly its oldest value: one shift in the sorted values for both.
      const old = w.vs[w.head]!;
      windowPush(w, span, MAX_WINDOW, ts, x, keepSorted, s.sorted);
      sortedReplace(s.sorted, old, x);
      return;
    }
    windowPush(w, span, MAX_WINDOW, ts, x, sortedRemove, s.sorted);
    sortedInsert(s.sorted, x);
  };
  return {
    defaultMessage: '{rule} {state}: {device} {metric}={value} ({detail})',
    defaultCooldown: COOLDOWN_MS,
    detector: {
      init: () => ({ win: windowInit(), prev: null, quantum: 0, sorted: [], outliers: [] }),
      update(s, ev) {
        const x = ev.value;
        if (x === null) return null;
        const quantum = s.quantum;
        s.quantum = quantumAfter(s.quantum, s.prev, x);
        s.prev = x;
        if (windowSize(s.win) < warmup) {
          admit(s, ev.ts, x);
          return null;
        }
        const med = medianOfSorted(s.sorted);
        const mad = madOfSorted(s.sorted, med);
        const dev = Math.abs(x - med);
        const scale = Math.max(1.4826 * mad, spreadFloor(0, quantum, med));
        const robust = dev / scale;
        const score = twoSidedScore(robust);
        const active = when ? when({ ...ev.env, score }) : robust > spec.threshold;
        if (active) {
          s.outliers.push(x);
          if (s.outliers.length > MAX_WINDOW) s.outliers.shift(); // adaptAfter 0: bounded all the same
          if (adaptAfter > 0 && s.outliers.length >= adaptAfter) {
            for (const o of s.outliers) admit(s, ev.ts, o);
            s.outliers = [];
          }
        } else {
          admit(s, ev.ts, x);
          s.outliers = [];
        }
        return new SpikeVerdict(active, x, score, robust, med, spec.threshold);
      },
    },
  };
}

export const spikeKind = {
  type: 'spike',
  get schema() {
    return spikeSpecSchema();
  },
  summary: 'robust outlier test against the median and MAD of the last `window` values',
  capabilities: { scores: true, timeBased: false },
  build: buildSpike,
} as const satisfies RuleKindDescriptor<ReturnType<typeof spikeSpecSchema>>;
