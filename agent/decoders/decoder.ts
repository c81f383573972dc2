// A decoder turns one frame into readings (SPEC.md section 2, "Sensor frame formats"). Pure
// computation, no I/O. A frame that does not parse throws FrameError with a low-cardinality
// `reason` that the runtime counts per source (edgeflow_agent_bad_frames_total{source,reason}).
import { EdgeflowError } from '../../shared/errors.ts';
import type { Reading } from '../../shared/model.ts';
import type { Descriptor } from '../../shared/registry.ts';

/** A source's `format:`, the name of a decoder in agent/decoders/registry.ts. */
export type FrameFormat = string;

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

export interface DecoderOptions {
  /** Largest frame accepted, bytes; larger is FrameError `too_long`. [1MB] */
  maxFrameBytes?: number;
}

/**
 * A decoder kind (issue 13): its `format:` name, what it needs, and a factory. Decoders are pure and a
 * few hundred lines with no dependencies, so the descriptor sits in the decoder's own file and the
 * factory is synchronous (nothing worth loading lazily).
 */
export interface DecoderDescriptor extends Descriptor {
  /** One line for docs/agent-config.md. */
  readonly summary: string;
  readonly capabilities: {
    /** Takes the metric (and device) from the MQTT topic: needs a `topicPattern` with {metric}. */
    readonly needsTopicMetric: boolean;
  };
  create(opts: DecoderOptions): Decoder;
}
