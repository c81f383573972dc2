// The checkpoint transaction (SPEC.md section 5, issue 4; docs/design/delivery.md): the items emitted
// since the last checkpoint, the window and rule state, the held readings and the keys of the frames
// being acknowledged go to the outbox in ONE SQLite transaction; only after it commits are the frames
// acknowledged to their broker. A crash (SIGKILL) restarts from a state that matches exactly the frames
// the broker considers delivered; everything after it is redelivered (QoS 1, persistent session) and
// replayed. Serial frames cannot be redelivered: their loss on a crash is bounded by the checkpoint
// interval and reported as `atRisk`.
//
// When: soon after an item is emitted (group commit, at most once per `checkpoint.minInterval`, issue
// 19), otherwise every `checkpoint.interval` (the runtime's tick asks `due()`).
import type { Histogram } from 'prom-client';
import type { Clock, Timer } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import type { Outbox, OutboxItem } from '../outbox/outbox.ts';
import type { RawFrame, Source } from '../sources/source.ts';
import {
  checkpointDigest,
  decodeCheckpointValue,
  encodeCheckpointValue,
  encodeIfChanged,
} from './checkpoint-codec.ts';
import type { AgentCounters } from './counters.ts';

/**
 * Group commit window after the first emitted item (issue 19): the windows of one window end close in
 * a burst (every device's reading that moves its watermark past the end), which reaches the agent over
 * several event-loop turns. Committing the first item at once and the rest minInterval later doubled
 * the checkpoints in bench/sdcard.ts (110 instead of 60 a minute: 392 instead of 295 MiB/h written).
 */
const EMIT_GROUP_MS = 25;
/**
 * Alerts skip the group window and wait at most this long after the previous checkpoint instead of
 * minInterval: reading → alert in Kafka p99 ≤ 300 ms (issue 19) left no room for a 100 ms wait on a
 * loaded gateway (bench/realtime.ts: p99 315–375 ms at load 14–20 with minInterval). Alert storms are
 * short (rules have hysteresis and `for`), so the extra checkpoints are bounded in time.
 */
const ALERT_MIN_SPACING_MS = 25;
/** Pending items that force a checkpoint at the next tick whatever the interval. */
const MAX_PENDING_ITEMS = 10_000;

export interface CheckpointSettings {
  /** checkpoint.interval, ms */
  interval: number;
  /** checkpoint.minInterval, ms */
  minInterval: number;
  /** limits.maxPendingFrames */
  maxPendingFrames: number;
}

export interface CheckpointDeps {
  outbox: Outbox;
  clock: Clock;
  log: Logger;
  counters: AgentCounters;
  /** edgeflow_agent_delivery_stage_seconds (stage "checkpoint"). */
  deliveryStage: Histogram<'stage'>;
  /** The current settings (a reload may change them). */
  settings: () => CheckpointSettings;
  /**
   * The state entries to persist, as JSON (null: delete the entry): windows (header and changed device
   * rows, checkpoint-parts.ts), rules, held. Called only when something changed.
   */
  state: () => Iterable<[string, string | null]>;
  /** The entries of the last state() call are committed (not called when the write failed). */
  stateWritten?: () => void;
  /** After a successful (or unnecessary) checkpoint, once the frames are acknowledged. */
  onCommitted: () => void;
  /** After items were written: the seqs they got (the uplink ships them now). */
  onWritten: (committed: { from: number; to: number } | undefined) => void;
  /** A write failed; `pendingFrames` frames wait for the next one. */
  onFailed: (pendingFrames: number) => void;
}

export class Checkpointer {
  private active = false;
  /** Frames (every source) taken since the last successful checkpoint: the back-pressure measure. */
  private framesSinceCheckpoint = 0;
  /**
   * Of those, the frames that wait for the checkpoint: an acknowledgement held until it (MQTT QoS 1) or
   * readings lost without it that no one can resend (serial). A QoS 0 frame waits for nothing.
   */
  private framesWaiting = 0;
  /** Serial (non-redeliverable) readings accepted since the last successful checkpoint: lost on a crash. */
  private readonly atRisk = new Map<string, number>();
  /** Something worth a checkpoint happened (a reading changed state, held readings changed). */
  private dirty = false;
  /**
   * Digests of the checkpoint values as last written, to write only the entries that changed. Digests,
   * not the values: at 10,000 keys the rule state alone is 12 MiB of JSON, kept for nothing but this
   * comparison (issue 14).
   */
  private readonly lastSaved = new Map<string, string>();
  private pendingItems: OutboxItem[] = [];
  /** Monotonic time each pending item was emitted (same order as pendingItems): the checkpoint stage. */
  private pendingEmittedAt: number[] = [];
  /** The group-commit checkpoint an emitted item scheduled (issue 19); null when none is due. */
  private emitTimer: Timer | null = null;
  /** Monotonic time emitTimer fires at. */
  private emitDueAt = 0;
  private pendingAcks: (() => void)[] = [];
  /** Keys of the frames in pendingAcks, per source, and of those the last checkpoint acknowledged. */
  private pendingKeys = new Map<string, string[]>();
  private lastKeys = new Map<string, string[]>();
  private lastCheckpointMono = 0;
  /** Wall time of the last checkpoint that succeeded (written or nothing to write); null before any. */
  private lastCommitAt: number | null = null;
  private failures = 0;

  constructor(private readonly d: CheckpointDeps) {}

  start(): void {
    this.active = true;
  }

  /** No more emit-scheduled checkpoints (explicit `checkpoint()` calls still write). */
  stop(): void {
    this.active = false;
    if (this.emitTimer !== null) this.d.clock.clearTimeout(this.emitTimer);
    this.emitTimer = null;
  }

  // ---- restoring ----

  /** A state entry of the last checkpoint, parsed; undefined when absent; `onCorrupt` when unreadable. */
  read(key: string, onCorrupt: (err: unknown) => void): unknown {
    const stored = this.d.outbox.readCheckpoint(key);
    if (stored === undefined) return undefined;
    try {
      // Plain JSON (any agent version) or deflated (`z1:`, checkpoint-codec.ts).
      const raw = decodeCheckpointValue(stored);
      this.lastSaved.set(key, checkpointDigest(raw));
      return JSON.parse(raw);
    } catch (err) {
      onCorrupt(err);
      return undefined;
    }
  }

  /** Hands a source the keys its frames had in the last checkpoint (see RawFrame.key). */
  restoreDelivered(source: Source): void {
    const stored = this.d.outbox.readCheckpoint(`delivered:${source.name}`);
    if (stored === undefined || !source.restoreDelivered) return;
    try {
      const keys = JSON.parse(decodeCheckpointValue(stored)) as string[];
      source.restoreDelivered(keys);
    } catch (err) {
      this.d.log.warn(
        { err, source: source.name },
        'delivered-frame keys unreadable; redeliveries may count twice',
      );
    }
  }

  // ---- what the data path reports ----

  /** Frames taken since the last successful checkpoint: the back-pressure measure. */
  get pendingFrames(): number {
    return this.framesSinceCheckpoint;
  }

  /**
   * Frames that call for a checkpoint at limits.maxPendingFrames (ingress.ts): those that wait for one
   * (framesWaiting) while checkpoints succeed; every frame while they fail (back-pressure bounds what
   * piles up behind a failing disk, summaries included).
   */
  get framesCallingForCheckpoint(): number {
    return this.failures > 0 ? this.framesSinceCheckpoint : this.framesWaiting;
  }

  /**
   * A frame was taken: it is acknowledged by the next successful checkpoint. `atRisk`: its source cannot
   * resend it (its readings are lost if the process dies before the checkpoint).
   */
  frame(source: string, frame: RawFrame, atRisk = false): void {
    this.framesSinceCheckpoint++;
    if (frame.ack !== undefined || atRisk) this.framesWaiting++;
    if (frame.ack) this.pendingAcks.push(frame.ack);
    if (frame.key) {
      const keys = this.pendingKeys.get(source);
      if (keys) keys.push(frame.key);
      else this.pendingKeys.set(source, [frame.key]);
    }
  }

  markDirty(): void {
    this.dirty = true;
  }

  /** Tracks a source that cannot redeliver (its accepted readings are at risk until committed). */
  trackAtRisk(source: string): void {
    this.atRisk.set(source, 0);
  }

  addAtRisk(source: string): void {
    this.atRisk.set(source, (this.atRisk.get(source) ?? 0) + 1);
  }

  atRiskOf(source: string): number | undefined {
    return this.atRisk.get(source);
  }

  atRiskEntries(): IterableIterator<[string, number]> {
    return this.atRisk.entries();
  }

  queue(item: OutboxItem): void {
    this.pendingItems.push(item);
    this.pendingEmittedAt.push(this.d.clock.monotonic());
    // Alerts do not wait for the group window nor for minInterval (SPEC section 2: alerts are never
    // behind summaries): an operator should see an overheating machine first (issue 19).
    if (item.kind === 'alerts') this.scheduleEmitCheckpoint(0, ALERT_MIN_SPACING_MS);
    else this.scheduleEmitCheckpoint(EMIT_GROUP_MS, this.d.settings().minInterval);
  }

  // ---- when ----

  /**
   * Group commit (issue 19): an emitted item is checkpointed `groupMs` later, with whatever else is
   * emitted meanwhile (the burst of windows one watermark step closes), instead of waiting up to
   * `checkpoint.interval` for the timer. At most one such (alerts: ALERT_MIN_SPACING_MS)
   * checkpoint per `checkpoint.minInterval`: that bounds SD-card writes when items are emitted all the
   * time (each checkpoint rewrites the window state). The timer checkpoint counts from the last
   * checkpoint of either kind, so with windows closing every second the number of checkpoints per second
   * stays what it was (bench/sdcard.ts). While checkpoints fail (disk full) only the timer retries.
   */
  private scheduleEmitCheckpoint(groupMs: number, spacingMs: number): void {
    if (!this.active || this.failures > 0) return;
    const { minInterval, interval } = this.d.settings();
    // minInterval ≥ interval asks for the timer-only timing of before issue 19: alerts too.
    const spacing = minInterval >= interval ? minInterval : Math.min(spacingMs, minInterval);
    const clock = this.d.clock;
    const now = clock.monotonic();
    const wait = Math.max(Math.min(groupMs, spacing), this.lastCheckpointMono + spacing - now);
    if (this.emitTimer !== null) {
      if (this.emitDueAt <= now + wait) return; // already due as soon
      clock.clearTimeout(this.emitTimer);
    }
    this.emitDueAt = now + wait;
    this.emitTimer = clock.setTimeout(() => {
      this.emitTimer = null;
      if (this.active && this.pendingItems.length > 0) this.checkpoint();
    }, wait);
  }

  /** The timer's question (every tick): is a checkpoint due now? */
  due(): boolean {
    return (
      // A group commit already due for emitted items takes the timer's place (one write, not two).
      (this.emitTimer === null &&
        this.d.clock.monotonic() - this.lastCheckpointMono >= this.d.settings().interval) ||
      this.pendingItems.length >= MAX_PENDING_ITEMS
    );
  }

  // ---- the transaction ----

  /**
   * Writes emitted items and engine state in one transaction, then acknowledges the frames.
   * SD-card friendliness: when nothing changed since the last write (no reading, no item) the write is
   * skipped, and only the state entries whose JSON changed are rewritten.
   */
  checkpoint(): boolean {
    const { outbox, clock, counters } = this.d;
    this.lastCheckpointMono = clock.monotonic();
    // The entries to write in their stored form (deflated when large, checkpoint-codec.ts; null: delete).
    // Each entry's JSON is compared with lastSaved and encoded as it comes from state(), an iterable that
    // builds them one at a time: at 10,000 keys the checkpoint's JSON was ~18 MiB, every second, and
    // holding all of it until the transaction, as before, kept it alive through any major GC that
    // finished meanwhile; V8 sizes the next heap limit from what survives (issue 14).
    const stored = new Map<string, string | null>();
    const digests = new Map<string, string>();
    const asked = this.dirty || this.pendingItems.length > 0;
    if (asked) {
      for (const [k, v] of this.d.state()) {
        if (v === null) {
          stored.set(k, v);
          continue;
        }
        const last = this.lastSaved.get(k);
        if (k === 'held' && v === '[]' && last === undefined) continue;
        const [dg, enc] = encodeIfChanged(v, last);
        if (enc !== undefined) {
          stored.set(k, enc);
          digests.set(k, dg);
        }
      }
    }
    if (stored.size > 0 || this.pendingItems.length > 0) {
      // With the state, the keys of the frames this checkpoint acknowledges (and the previous one's, whose
      // PUBACKs may also not have reached the broker): after a crash their redeliveries are not counted.
      for (const [src, keys] of this.pendingKeys) {
        const json = JSON.stringify([...(this.lastKeys.get(src) ?? []), ...keys]);
        stored.set(`delivered:${src}`, encodeCheckpointValue(json));
      }
    }
    if (this.pendingItems.length === 0 && stored.size === 0) {
      // Nothing to persist: frames that changed no state (bad frames, duplicates) can be acknowledged.
      counters.checkpoints.inc({ result: 'skipped' });
      if (asked) this.d.stateWritten?.();
      this.committed();
      return true;
    }
    let error: unknown;
    let written: { from: number; to: number } | undefined;
    try {
      const res = outbox.append(this.pendingItems, stored);
      error = res.error;
      if (res.lastSeq !== undefined && res.appended > 0)
        written = { from: res.lastSeq - res.appended + 1, to: res.lastSeq };
    } catch (err) {
      error = err;
    }
    if (error !== undefined) {
      // Disk full or I/O error: the transaction rolled back. Keep the items, the state and the un-acked
      // frames in memory and retry at the next tick; MQTT brokers redeliver if we die meanwhile.
      // Never crash (issue 4). Back-pressure bounds what accumulates meanwhile.
      this.failures++;
      counters.checkpoints.inc({ result: 'error' });
      if (this.failures === 1 || this.failures % 60 === 0)
        this.d.log.error(
          {
            err: error,
            failures: this.failures,
            pendingFrames: this.framesSinceCheckpoint,
            pendingItems: this.pendingItems.length,
          },
          'checkpoint failed; retrying',
        );
      this.d.onFailed(this.framesSinceCheckpoint);
      return false;
    }
    if (this.failures > 0) this.d.log.info({ failures: this.failures }, 'checkpoint succeeded again');
    this.failures = 0;
    counters.checkpoints.inc({ result: 'ok' });
    for (const k of stored.keys()) {
      const dg = digests.get(k);
      if (dg === undefined) this.lastSaved.delete(k);
      else this.lastSaved.set(k, dg);
    }
    if (asked) this.d.stateWritten?.();
    const committedAt = clock.monotonic();
    for (const t of this.pendingEmittedAt)
      this.d.deliveryStage.observe({ stage: 'checkpoint' }, (committedAt - t) / 1000);
    this.pendingItems = [];
    this.pendingEmittedAt = [];
    this.committed();
    // Ship right after the checkpoint that holds the items: the uplink pumps now (issue 19).
    this.d.onWritten(written);
    return true;
  }

  /** After a successful (or unnecessary) checkpoint: acknowledge frames, reset the at-risk counts. */
  private committed(): void {
    this.lastCommitAt = this.d.clock.now();
    this.dirty = false;
    this.framesSinceCheckpoint = 0;
    this.framesWaiting = 0;
    for (const k of this.atRisk.keys()) this.atRisk.set(k, 0);
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    this.lastKeys = this.pendingKeys;
    this.pendingKeys = new Map();
    for (const ack of acks) ack();
    this.d.onCommitted();
  }

  /** What /status shows of the transaction. */
  view(): {
    pendingFrames: number;
    pendingAcks: number;
    pendingItems: number;
    failing: number;
    lastCommitAt: number | null;
  } {
    return {
      pendingFrames: this.framesSinceCheckpoint,
      pendingAcks: this.pendingAcks.length,
      pendingItems: this.pendingItems.length,
      failing: this.failures,
      lastCommitAt: this.lastCommitAt,
    };
  }
}
