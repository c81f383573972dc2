// The simulated fleet as a deterministic frame generator: `tick(i)` returns the frames of sample tick i
// in the order they are to be written. No I/O and no clock here: the scheduler (runner.ts) decides when
// a tick happens, so the same options and seed always give the same frames, byte for byte.
//
// Timing: tick i has true event time startTs + i * periodMs; a device stamps it with its own fixed clock
// skew added. A frame held back (--out-of-order) is released, after the frames of the first later tick
// whose true time has reached its release time, with its original timestamp.
import { type AnomalyKind, DeviceAnomalies, type Label } from './anomalies.ts';
import { FaultInjector, type FaultOptions, HoldBack, malformedPayload } from './faults.ts';
import { encode, type Format, type FrameContent } from './formats.ts';
import { streamFor, uniform } from './prng.ts';
import { DeviceSignals, METRIC_INFO, type Metric, roundTo } from './signals.ts';

export type FrameKind = 'valid' | 'duplicate' | 'malformed';

export interface Frame {
  kind: FrameKind;
  deviceIndex: number;
  device: string;
  /** The metric of a one-reading frame (MQTT topics need it); null for a grouped frame. */
  metric: Metric | null;
  /** Without the trailing newline. */
  payload: string | Buffer;
  /** Metrics of the readings this frame contributes (only for kind 'valid'; empty otherwise). */
  readings: readonly Metric[];
  /** A valid frame older than a reading of the same device/metric written before it. */
  outOfOrder: boolean;
}

export interface FleetOptions extends FaultOptions {
  seed: string | number;
  devices: readonly string[];
  metrics: readonly Metric[];
  /** Sample ticks per second per device (every enabled metric is sampled on each tick). */
  rateHz: number;
  startTs: number;
  format: Format;
  /** One frame per device and tick with all its metrics (json, kv, senml) instead of one per reading. */
  group: boolean;
  anomalies: readonly AnomalyKind[];
  /** Expected anomaly episodes per device and hour of event time. */
  anomalyRate: number;
  clockSkewMs: number;
  onLabel?: (l: Label) => void;
}

interface Held {
  frame: Frame;
  duplicate: boolean;
  ts: number;
}

interface Device {
  name: string;
  skewMs: number;
  signals: DeviceSignals;
  anomalies: DeviceAnomalies;
}

export class Fleet {
  readonly periodMs: number;
  private readonly devices: Device[];
  private readonly faults: FaultInjector;
  private readonly held = new HoldBack<Held>();
  /** Newest timestamp written per device and metric, to flag out-of-order frames exactly. */
  private readonly newest: Map<string, number>[];
  private lastTick = -1;

  constructor(private readonly o: FleetOptions) {
    if (!(o.rateHz > 0)) throw new RangeError('rateHz must be > 0');
    if (o.format === 'csv' || o.format === 'number') {
      if (o.group && o.metrics.length > 1)
        throw new RangeError(`${o.format} frames carry one reading; --group is not possible`);
    }
    this.periodMs = 1000 / o.rateHz;
    const onLabel = o.onLabel ?? (() => {});
    this.devices = o.devices.map((name) => {
      const skewRng = streamFor(o.seed, 'skew', name);
      return {
        name,
        skewMs: Math.round(uniform(skewRng, -o.clockSkewMs, o.clockSkewMs)),
        signals: new DeviceSignals(o.seed, name, o.metrics),
        anomalies: new DeviceAnomalies(o.seed, name, o.metrics, o.anomalies, o.anomalyRate, onLabel),
      };
    });
    this.newest = o.devices.map(() => new Map());
    this.faults = new FaultInjector(o.seed, o);
  }

  /** Fixed clock offset of each device, in ms (for reports and tests). */
  get skews(): Record<string, number> {
    return Object.fromEntries(this.devices.map((d) => [d.name, d.skewMs]));
  }

  /** Number of frames held back, not yet released. */
  get heldBack(): number {
    return this.held.size;
  }

  trueTs(tick: number): number {
    return Math.round(this.o.startTs + tick * this.periodMs);
  }

  /** The frames of tick `tick`; ticks must be generated in order 0, 1, 2, ... */
  tick(tick: number): Frame[] {
    if (tick !== this.lastTick + 1)
      throw new RangeError(`tick ${tick} out of sequence (last ${this.lastTick})`);
    this.lastTick = tick;
    const now = this.trueTs(tick);
    const out: Frame[] = [];
    this.devices.forEach((d, index) => {
      const ts = now + d.skewMs;
      d.anomalies.beginTick(tick, this.periodMs);
      const values: [Metric, number][] = [];
      for (const m of this.o.metrics) {
        const v = d.anomalies.apply(m, d.signals.sample(m, now, this.periodMs), tick, ts);
        if (v !== null) values.push([m, roundTo(v, METRIC_INFO[m].decimals)]);
      }
      d.anomalies.endTick(tick);
      const contents: FrameContent[] =
        this.o.group && values.length > 0
          ? [{ device: d.name, ts, values }]
          : values.map((v) => ({ device: d.name, ts, values: [v] }));
      for (const c of contents) this.place(index, c, now, out);
    });
    for (const h of this.held.takeDue(now)) this.emit(h, out);
    return out;
  }

  /** The run reached its end: release every held-back frame and close the open anomaly episodes. */
  flush(): Frame[] {
    const out: Frame[] = [];
    for (const h of this.held.drain()) this.emit(h, out);
    this.finish();
    return out;
  }

  /** The run was interrupted: held-back frames are dropped (never written, never counted). */
  discard(): number {
    const n = this.held.drain().length;
    this.finish();
    return n;
  }

  private finish(): void {
    for (const d of this.devices) d.anomalies.finish();
  }

  private place(deviceIndex: number, c: FrameContent, now: number, out: Frame[]): void {
    const metric = c.values.length === 1 ? c.values[0]![0] : null;
    const fate = this.faults.decide();
    if (fate.malformed !== null) {
      out.push({
        kind: 'malformed',
        deviceIndex,
        device: c.device,
        metric,
        payload: malformedPayload(this.o.format, c, fate.malformed, this.faults.rng),
        readings: [],
        outOfOrder: false,
      });
      return;
    }
    const frame: Frame = {
      kind: 'valid',
      deviceIndex,
      device: c.device,
      metric,
      payload: encode(this.o.format, c),
      readings: c.values.map(([m]) => m),
      outOfOrder: false,
    };
    const h: Held = { frame, duplicate: fate.duplicate, ts: c.ts };
    // Released strictly after a later tick's frames, so a held frame really is late.
    if (fate.holdMs !== null) this.held.add(h, now + Math.max(fate.holdMs, 1));
    else this.emit(h, out);
  }

  private emit(h: Held, out: Frame[]): void {
    const newest = this.newest[h.frame.deviceIndex]!;
    let late = false;
    for (const m of h.frame.readings) {
      const n = newest.get(m);
      if (n !== undefined && h.ts < n) late = true;
      if (n === undefined || h.ts > n) newest.set(m, h.ts);
    }
    h.frame.outOfOrder = late;
    out.push(h.frame);
    if (h.duplicate) out.push({ ...h.frame, kind: 'duplicate', readings: [], outOfOrder: false });
  }
}
