// A source reads raw frames from one place (a serial port, a broker subscription, the embedded broker).
// Sources only do I/O: decoding, windows and counting policy live in the runtime (STYLE.md: Telegraf).
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import type { Descriptor } from '../../shared/registry.ts';
import type { ConfigFile } from '../config-common.ts';

export interface RawFrame {
  /** One frame: a line from a serial port (without the line terminator) or one MQTT message payload. */
  payload: Buffer;
  /**
   * Fields taken from the MQTT topic through the source's `topicPattern` (device, metric). Read-only: the
   * MQTT source hands the same object to every frame of one topic.
   */
  fields?: Readonly<{ device?: string; metric?: string }>;
  /** Wall-clock arrival time, epoch ms. */
  receivedAt: number;
  /**
   * Monotonic arrival time (the source context's clock), read with `receivedAt`. A source that gives it
   * spares the runtime a clock read per frame (ingress.ts); one that does not gets it read on arrival.
   */
  receivedMono?: number;
  /**
   * For sources that can redeliver (MQTT QoS 1): acknowledge to the broker. The runtime calls it only
   * after the frame's readings are in a checkpoint (issue 4), so a crash before that means redelivery.
   * Absent for sources that cannot redeliver (serial).
   */
  ack?: () => void;
  /**
   * Identity of a redeliverable message (MQTT: packet id + hash of topic and payload). The runtime saves
   * the keys of the frames each checkpoint acknowledges, so a broker's redelivery after a crash of a
   * message whose PUBACK never left the process is recognised and not counted twice.
   */
  key?: string;
}

export type SourceState = 'starting' | 'up' | 'down' | 'stopped';

export interface SourceStatus {
  name: string;
  type: string;
  state: SourceState;
  /** Last error code/message while down (never contains secrets). */
  lastError?: string;
  framesIn: number;
  reconnects: number;
  [extra: string]: unknown;
}

export interface SourceContext {
  log: Logger;
  clock: Clock;
  metrics: Registry;
}

/**
 * Optional callbacks from a source to the runtime, besides frames. A source reports here what it had
 * to drop before a frame could exist (an overlong serial line, an oversized MQTT payload) so the runtime
 * counts it with the decoders' reasons (edgeflow_agent_bad_frames_total{source,reason}).
 */
export interface SourceHooks {
  /** A frame was dropped by the source; `reason` is low-cardinality (`too_long`). */
  onBadFrame?: (reason: string) => void;
}

export interface Source {
  readonly name: string;
  /** The descriptor's type (agent/sources/registry.ts). */
  readonly type: string;
  /**
   * Starts reading. Resolves once the source is set up (not necessarily connected): a port that is
   * missing or a broker that is down is retried with backoff and reported in status(), never thrown.
   * Frames are delivered in arrival order; `onFrame` is never called concurrently.
   */
  start(onFrame: (frame: RawFrame) => void, hooks?: SourceHooks): Promise<void>;
  /** Keys (RawFrame.key) already in a checkpoint: their redeliveries (DUP) are acked, not delivered. */
  restoreDelivered?(keys: readonly string[]): void;
  /** Back-pressure: stop taking new frames (MQTT: stop reading the socket / acknowledging). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  status(): SourceStatus;
}

/**
 * A source kind (issue 13): the `type:` users write, its config schema, what it can do, and a factory
 * that loads the implementation only when a config uses the kind (aedes, serialport bindings and
 * mqtt.js are not loaded by an agent that does not need them: issue 14). The descriptor lives in
 * `<type>.descriptor.ts` beside the implementation; agent/sources/registry.ts lists them.
 */
export interface SourceDescriptor<S extends z.ZodObject = z.ZodObject> extends Descriptor {
  readonly schema: S;
  /** One line for docs/agent-config.md. */
  readonly summary: string;
  readonly capabilities: {
    /**
     * Unacknowledged frames come again after a crash (MQTT QoS 1): back-pressure pauses the source.
     * Otherwise (serial) a frame not taken is lost, so the runtime never pauses it: it drops and counts,
     * and reports the frames at risk since the last checkpoint.
     */
    readonly replayable: boolean;
    /** Opens a terminal device (serial port or pty). */
    readonly needsTty: boolean;
    /** Frames carry an MQTT topic, so a format may take device and metric from it (`topicPattern`). */
    readonly topics: boolean;
    /** Listens for connections (the embedded broker): credentials are required by default. */
    readonly listens: boolean;
  };
  create(cfg: z.output<S>, agentId: string, ctx: SourceContext): Promise<Source>;
  /** The files the entry names (secrets, TLS material, credentials), for check-config. */
  files?(cfg: z.output<S>): readonly ConfigFile[];
}
