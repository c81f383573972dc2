// An output writes frames to a transport and confirms each one it delivered. The runner owns timing
// and accounting; an output only does I/O (STYLE.md: plugins do I/O, the runtime owns policy).
import type { Frame } from '../fleet.ts';

export interface Confirm {
  written(f: Frame): void;
  failed(f: Frame): void;
}

export interface Output {
  readonly name: string;
  open(): Promise<void>;
  /**
   * Writes `frames` in order and calls `sink.written(frame)` for each one the transport accepted, or
   * `sink.failed(frame)` (see report.ts). Resolves when the output can take more: awaiting it is the
   * back-pressure.
   */
  write(frames: readonly Frame[], sink: Confirm): Promise<void>;
  /** Waits for every pending confirmation (serial drain, MQTT PUBACKs), then closes the transport. */
  close(): Promise<void>;
}
