// The window types (`windows[].type`), one line each. Adding a type: its assigner file (a
// WindowAssigner and a WindowTypeDescriptor) and one line here; the `windows` schema, check-config and
// docs/agent-config.md follow from it.
import { AGGREGATES, type AggregateName } from '../../shared/model.ts';
import { Registry } from '../../shared/registry.ts';
import { countWindow } from './count.ts';
import { hoppingWindow } from './hopping.ts';
import { sessionWindow } from './session.ts';
import { tumblingWindow } from './tumbling.ts';
import type { WindowTypeDescriptor } from './window.ts';

export const windowTypes = new Registry<WindowTypeDescriptor>('window type', [
  tumblingWindow,
  hoppingWindow,
  sessionWindow,
  countWindow,
]);

/**
 * An aggregate a window can compute (`windows[].aggregates`). The arithmetic is one Accumulator
 * (aggregates.ts: one pass over a window's readings feeds all of them, which is why it is not a
 * factory per aggregate) and every name is a field of the Summary on the wire (shared/model.ts
 * AGGREGATES, SPEC.md 3): adding one is a wire change first, then a line here.
 */
export interface AggregateDescriptor {
  readonly type: AggregateName;
  readonly summary: string;
  readonly capabilities: {
    /** Computed from a DDSketch kept per window (memory per open window). */
    readonly sketch: boolean;
    /** Filled by the rules (anomaly scores), not by the readings' values. */
    readonly fromRules: boolean;
  };
}

const plain = { sketch: false, fromRules: false } as const;

export const aggregates = new Registry<AggregateDescriptor>('aggregate', [
  { type: 'count', summary: 'readings in the window', capabilities: plain },
  { type: 'min', summary: 'smallest value', capabilities: plain },
  { type: 'max', summary: 'largest value', capabilities: plain },
  { type: 'mean', summary: 'arithmetic mean', capabilities: plain },
  { type: 'sum', summary: 'sum (compensated)', capabilities: plain },
  { type: 'stddev', summary: 'population standard deviation', capabilities: plain },
  { type: 'first', summary: 'value of the earliest reading (event time)', capabilities: plain },
  { type: 'last', summary: 'value of the latest reading (event time)', capabilities: plain },
  {
    type: 'p50',
    summary: 'median, DDSketch (1% relative accuracy)',
    capabilities: { sketch: true, fromRules: false },
  },
  { type: 'p95', summary: '95th percentile, DDSketch', capabilities: { sketch: true, fromRules: false } },
  {
    type: 'anomaly_max',
    summary: 'highest anomaly score a statistical rule gave a reading of the window',
    capabilities: { sketch: false, fromRules: true },
  },
]);

/** Every name of the wire model has a descriptor and no descriptor lacks a wire field. */
for (const a of AGGREGATES) aggregates.get(a);
if (aggregates.all().length !== AGGREGATES.length)
  throw new Error('aggregates registry and AGGREGATES differ');
