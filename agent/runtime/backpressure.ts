// Back-pressure (issue 4): when `limits.maxPendingFrames` frames wait for a checkpoint (a slow or failing
// disk), the runtime stops taking frames it can get again later: MQTT sources are paused (the broker
// keeps the rest), and the engines' processing clock stands still meanwhile (processing-clock.ts), so
// paused devices do not look idle. Serial lines cannot be paused (the port would lose frames uncounted
// in the OS buffer or the device); ingress.ts drops and counts their frames instead.
import type { Logger } from '../../shared/log.ts';
import type { Decoder } from '../decoders/decoder.ts';
import type { Source } from '../sources/source.ts';
import type { AgentCounters, Cell } from './counters.ts';
import type { ProcessingClock } from './processing-clock.ts';

/** A running source with what the data path needs to know about it. */
export interface SourceEntry {
  source: Source;
  decoder: Decoder;
  device: string | undefined;
  /** Its frames can be asked for again (MQTT) or not (serial). */
  redeliverable: boolean;
  /** Its cells of frames_in_total and readings_in_total{source}, bumped per frame and reading (ingress.ts). */
  counts: { framesIn: Cell; readingsIn: Cell };
}

export class Backpressure {
  private pausedState = false;

  constructor(
    private readonly processing: ProcessingClock,
    private readonly counters: AgentCounters,
    private readonly log: Logger,
  ) {}

  get paused(): boolean {
    return this.pausedState;
  }

  /** Pauses the redeliverable sources; false when already paused. */
  pause(sources: readonly SourceEntry[], pendingFrames: number): boolean {
    if (this.pausedState) return false;
    this.pausedState = true;
    this.processing.pause();
    this.counters.backpressure.inc();
    for (const { source, redeliverable } of sources) if (redeliverable) source.pause();
    this.log.warn(
      { pendingFrames },
      'back-pressure: MQTT sources paused, serial frames dropped (counted) until the next checkpoint',
    );
    return true;
  }

  resume(sources: readonly SourceEntry[]): void {
    if (!this.pausedState) return;
    this.pausedState = false;
    this.processing.resume();
    for (const { source, redeliverable } of sources) if (redeliverable) source.resume();
  }
}
