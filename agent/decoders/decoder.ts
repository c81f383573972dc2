// A decoder turns one frame into readings (SPEC.md section 2, "Sensor frame formats"). Pure
// computation, no I/O. A frame that does not parse throws FrameError with a low-cardinality
// `reason` that the runtime counts per source (edgeflow_agent_bad_frames_total{source,reason}).
import { EdgeflowError } from '../../shared/errors.ts';
import type { Reading } from '../../shared/model.ts';

export type FrameFormat = 'json' | 'csv' | 'kv' | 'senml' | 'number';

export interface DecodeContext {
  /** Default device (source's `device`, or from the topic). */
  device?: string;
  /** Metric from the topic (needed by `number`). */
  metric?: string;
  /** Arrival time (epoch ms) used when the frame carries no timestamp. */
  arrivalTs: number;
}

export interface Decoder {
  readonly format: FrameFormat;
  decode(payload: Buffer | string, ctx: DecodeContext): Reading[];
}

export class FrameError extends EdgeflowError {
  /** e.g. `json_syntax`, `no_device`, `no_value`, `not_a_number`, `bad_timestamp`, `too_long`, `encoding`. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('FRAME_INVALID', message);
    this.reason = reason;
  }
}
