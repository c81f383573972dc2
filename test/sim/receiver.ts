// The receiving end of the simulator integration tests: decodes every frame with the agent's own
// decoders (SPEC.md section 2) and counts it the way firmware-sim/README.md defines the report, so
// the two can be compared field by field:
//   a frame that does not decode            → malformed
//   the same bytes again (same topic)       → duplicate
//   otherwise                               → its readings, per "device/metric"; out of order when a
//                                             reading is older than one already received for that key
import {
  createDecoder,
  type DecodeContext,
  FrameError,
  type FrameFormat,
} from '../../agent/decoders/index.ts';
import type { Reading } from '../../shared/model.ts';

export class Receiver {
  frames = 0;
  readings = 0;
  malformed = 0;
  duplicates = 0;
  outOfOrder = 0;
  readonly byDeviceMetric: Record<string, number> = {};
  private readonly seen = new Set<string>();
  private readonly newest = new Map<string, number>();
  private readonly decoder;

  /** `detectDuplicates: false` for frames without a timestamp (number), where equal bytes are normal. */
  constructor(
    format: FrameFormat,
    private readonly detectDuplicates = format !== 'number',
  ) {
    this.decoder = createDecoder(format);
  }

  frame(payload: Buffer, ctx: Omit<DecodeContext, 'arrivalTs'> = {}, topic = ''): void {
    this.frames++;
    let readings: Reading[];
    try {
      readings = this.decoder.decode(payload, { ...ctx, arrivalTs: Date.now() });
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      this.malformed++;
      return;
    }
    if (this.detectDuplicates) {
      const key = `${topic}\u0000${payload.toString('latin1')}`;
      if (this.seen.has(key)) {
        this.duplicates++;
        return;
      }
      this.seen.add(key);
    }
    let late = false;
    for (const r of readings) {
      const k = `${r.device}/${r.metric}`;
      this.byDeviceMetric[k] = (this.byDeviceMetric[k] ?? 0) + 1;
      this.readings++;
      const n = this.newest.get(k);
      if (n !== undefined && r.ts < n) late = true;
      if (n === undefined || r.ts > n) this.newest.set(k, r.ts);
    }
    if (late) this.outOfOrder++;
  }

  sorted(): Record<string, number> {
    return Object.fromEntries(
      Object.entries(this.byDeviceMetric).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  }
}
