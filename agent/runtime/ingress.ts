// The ingress path: frame → decode → (clock hold | refusal) → rules → windows, and what the engines emit
// → pending outbox items. Runs once per frame: no allocation beyond what decoding needs, counts in
// plain tallies (counters.ts).
//
//   sources ─frames─▶ decoders ─readings─▶ rules ─score─▶ windows ─summaries─▶ rules
//   summaries, alerts, late events ──▶ checkpoint.ts (pending until the next transaction)
import type { Clock } from '../../shared/clock.ts';
import { type Logger, RateLimitedLog } from '../../shared/log.ts';
import type { Alert, LateEvent, Reading, Summary } from '../../shared/model.ts';
import { FrameError } from '../decoders/decoder.ts';
import type { RawFrame } from '../sources/source.ts';
import type { Backpressure, SourceEntry } from './backpressure.ts';
import type { Checkpointer } from './checkpoint.ts';
import type { ClockGuard } from './clock-guard.ts';
import type { ClockHold } from './clock-hold.ts';
import type { AgentCounters, Cell } from './counters.ts';
import type { EngineOutputs, Engines } from './engines.ts';
import type { ProcessingClock } from './processing-clock.ts';

/**
 * How far a device timestamp may lie after its frame's arrival (wall clock) before the reading is refused,
 * so no window is ever dated in the future.
 */
const FUTURE_TOLERANCE_MS = 60_000;

/** Readings of one frame refused for their timestamp: the first reason and message, and how many. */
interface Refused {
  count: number;
  reason?: 'timestamp_too_old' | 'timestamp_in_future';
  message?: string;
}

export interface IngressDeps {
  clock: Clock;
  /**
   * The engines' clock (processing-clock.ts: its monotonic time stands still while sources are paused).
   * The monotonic instant handed to the windows and rules with each reading is read here, on the clock
   * their ticks read: one read off `clock` put readings ahead of the ticks by every paused interval so
   * far, and idle windows closed that much later.
   */
  processing: ProcessingClock;
  log: Logger;
  counters: AgentCounters;
  clockGuard: ClockGuard;
  hold: ClockHold;
  engines: Engines;
  checkpointer: Checkpointer;
  backpressure: Backpressure;
  /** limits.maxPendingFrames (a reload may change it). */
  maxPendingFrames: () => number;
  /** Too many frames wait for a checkpoint: pause (backpressure.ts). */
  overPending: () => void;
}

export class Ingress implements EngineOutputs {
  private readonly badFrameLog: RateLimitedLog;

  constructor(private readonly d: IngressDeps) {
    this.badFrameLog = new RateLimitedLog(d.log);
  }

  /**
   * A source's counter cells, kept in its SourceEntry: a labelled `inc({ source })` per frame and per
   * reading built a label object and key and looked it up each time (issue 14: 11 % of the agent's
   * per-message CPU at QoS 0, measured with a --cpu-prof of the in-process path).
   */
  sourceCounts(source: string): SourceEntry['counts'] {
    const { counters } = this.d;
    return { framesIn: counters.framesIn.cell({ source }), readingsIn: counters.readingsIn.cell({ source }) };
  }

  onFrame(entry: SourceEntry, frame: RawFrame): void {
    const { counters, checkpointer } = this.d;
    const src = entry.source.name;
    entry.counts.framesIn.value++;
    if (this.d.backpressure.paused && !entry.redeliverable) {
      // Back-pressure and a source that cannot be asked to resend: drop with a counter rather than
      // queue without bound (issue 4). The frame is decoded only to count its readings.
      let n = 1;
      try {
        n = entry.decoder.decode(frame.payload, {
          device: frame.fields?.device ?? entry.device,
          metric: frame.fields?.metric,
          arrivalTs: frame.receivedAt,
        }).length;
      } catch {}
      counters.readingsDropped.inc({ reason: 'backpressure' }, n);
      frame.ack?.();
      return;
    }
    checkpointer.frame(src, frame, !entry.redeliverable);
    let readings: Reading[];
    try {
      readings = entry.decoder.decode(frame.payload, {
        device: frame.fields?.device ?? entry.device,
        metric: frame.fields?.metric,
        arrivalTs: frame.receivedAt,
      });
    } catch (err) {
      const reason = err instanceof FrameError ? err.reason : 'decoder_error';
      this.badFrame(src, reason, frame, err);
      return;
    }
    const refused: Refused = { count: 0 };
    // One monotonic instant for the frame's readings, for the windows and the rules: the source's arrival
    // time when it gives one, else read once here (issue 14).
    const { processing } = this.d;
    const mono =
      frame.receivedMono === undefined ? processing.monotonic() : processing.monotonicAt(frame.receivedMono);
    // Readings stamped more than FUTURE_TOLERANCE_MS after their frame arrived are refused.
    const maxTs = frame.receivedAt + FUTURE_TOLERANCE_MS;
    const readingsIn = entry.counts.readingsIn;
    for (const r of readings) {
      if (this.accept(src, readingsIn, r, refused, mono, maxTs) && !entry.redeliverable)
        checkpointer.addAtRisk(src);
    }
    this.countRefused(src, frame, refused);
    // A checkpoint at the limit for frames that wait for one (QoS 1 acks, serial readings at risk), not for
    // QoS 0 frames, which the timer checkpoints: above 50,000 QoS 0 frames a second the whole state was
    // written every 50,000 frames, ~8 % of the agent's CPU per reading (issue 14, fake-broker run: 4.3 vs
    // 4.0 µs) and more SD-card writes, for no frame waiting on it.
    if (checkpointer.framesCallingForCheckpoint >= this.d.maxPendingFrames()) this.d.overPending();
  }

  /** A source's own report of a frame it could not even frame (SourceHooks.onBadFrame). */
  sourceBadFrame(src: string, reason: string): void {
    this.badFrame(
      src,
      reason,
      { payload: Buffer.alloc(0), receivedAt: this.d.clock.now() },
      new Error(reason),
    );
  }

  private badFrame(src: string, reason: string, frame: RawFrame, err: unknown): void {
    this.d.counters.badFrames.inc({ source: src, reason });
    this.badFrameLog.warn(
      `bad_frame:${src}:${reason}`,
      {
        source: src,
        reason,
        frame: frame.payload.subarray(0, 120).toString('utf8'),
        err: (err as Error).message,
      },
      'bad frame skipped',
    );
  }

  /**
   * bad_frames_total counts frames, not readings (issue 12 item 5): a SenML pack whose ten records are
   * all too old is one bad frame; its readings are counted in readings_dropped_total{reason}.
   */
  private countRefused(src: string, frame: RawFrame, refused: Refused): void {
    if (refused.reason === undefined) return;
    this.d.counters.readingsDropped.inc({ reason: refused.reason }, refused.count);
    this.badFrame(src, refused.reason, frame, new Error(`${refused.count} reading(s): ${refused.message}`));
  }

  /** Returns true when the reading went into the windows and rules; a refusal is noted in `refused`. */
  private accept(
    src: string,
    readingsIn: Cell,
    r: Reading,
    refused: Refused,
    mono: number,
    maxTs: number,
  ): boolean {
    const { clockGuard, counters, checkpointer } = this.d;
    if (r.arrivalTime && !clockGuard.synced()) {
      // No trustworthy wall clock yet: keep the reading with its monotonic arrival time and stamp it
      // once the clock syncs, instead of emitting windows dated in 1970 (issue 4, "Clocks").
      if (!this.d.hold.hold(r, src, this.d.maxPendingFrames())) {
        counters.readingsDropped.inc({ reason: 'unsynced_clock_buffer_full' });
        return false;
      }
      checkpointer.markDirty();
      return false;
    }
    if (r.ts < clockGuard.minEventTime()) {
      refused.count++;
      refused.reason ??= 'timestamp_too_old';
      refused.message ??= `timestamp ${r.ts} is before limits.minEventTime ${new Date(clockGuard.minEventTime()).toISOString()}`;
      return false;
    }
    if (clockGuard.synced() && r.ts > maxTs) {
      counters.futureRefused.inc();
      refused.count++;
      refused.reason ??= 'timestamp_in_future';
      refused.message ??= `timestamp ${new Date(r.ts).toISOString()} is in the future`;
      return false;
    }
    readingsIn.value++;
    checkpointer.markDirty();
    // Rules first: the windows carry the reading's score as `anomaly_max` (issue 11).
    const { rules, windows } = this.d.engines;
    // The score goes beside the reading, not into a copy of it (issue 14: a copy per scored reading).
    windows.ingest(r, rules.onReading(r, mono), mono);
    return true;
  }

  /** The wall clock synced: stamp the held readings with the wall time of their arrival and take them. */
  releaseHeld(): void {
    const { clock, hold } = this.d;
    const now = clock.now();
    const mono = clock.monotonic(); // the clock hold's own, for the arrival stamps
    const engineNow = this.d.processing.monotonic();
    const held = hold.take();
    this.d.checkpointer.markDirty();
    for (const h of held) {
      const refused: Refused = { count: 0 };
      this.accept(
        h.source,
        this.d.counters.readingsIn.cell({ source: h.source }),
        { ...h.reading, ts: Math.round(now - (mono - h.mono)), arrivalTime: true },
        refused,
        engineNow,
        now + FUTURE_TOLERANCE_MS,
      );
      this.countRefused(h.source, { payload: Buffer.alloc(0), receivedAt: now }, refused);
    }
    this.d.log.info(
      { readings: held.length },
      'wall clock synchronised; stamped readings held while it was not',
    );
  }

  // ---- what the engines emit ----

  summary(s: Summary): void {
    this.d.counters.summariesOut.inc({ window: s.window.name });
    this.d.checkpointer.queue({ kind: 'summaries', id: s.id, rev: s.rev, ts: s.window.start, body: s });
    this.d.engines.rules.onSummary(s);
  }

  late(e: LateEvent): void {
    this.d.counters.lateItems.inc();
    this.d.checkpointer.queue({ kind: 'late', id: e.id, rev: 0, ts: e.ts, body: e });
  }

  alert(a: Alert): void {
    this.d.counters.alerts.inc({ rule: a.rule, state: a.state });
    this.d.checkpointer.queue({ kind: 'alerts', id: a.id, rev: 0, ts: a.ts, body: a });
  }
}
