// Injected anomalies with ground truth (SPEC.md section 6, --anomalies and --labels).
//
//   spike    one sample far off (1.5-3 x the metric's scale)
//   step     a level shift of +-scale for the episode
//   drift    an offset growing linearly from 0 to +-2 x scale over the episode
//   stuck    the value freezes at its first value of the episode
//   dropout  no readings at all for the episode
//
// Episodes start at random with `ratePerHour` expected starts per device and hour of event time; a
// metric has at most one episode at a time. Non-spike episodes last 10-120 s of event time (at least
// 3 samples). Each finished episode yields one label {device, metric, kind, start, end}: the event
// timestamps (as written in the frames, clock skew included) of the first and last affected sample,
// both inclusive. An episode still open when the run ends is labelled up to the last sample generated.
import { pick, type Rng, streamFor, uniform } from './prng.ts';
import { METRIC_INFO, type Metric } from './signals.ts';

export const ANOMALY_KINDS = ['spike', 'step', 'drift', 'stuck', 'dropout'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

export interface Label {
  device: string;
  metric: Metric;
  kind: AnomalyKind;
  start: number;
  end: number;
}

interface Episode {
  kind: AnomalyKind;
  firstTick: number;
  lastTick: number;
  magnitude: number;
  start: number;
  end: number;
  stuckValue: number | null;
}

export class DeviceAnomalies {
  private readonly rng: Rng;
  private readonly open = new Map<Metric, Episode>();

  constructor(
    seed: string | number,
    private readonly device: string,
    private readonly metrics: readonly Metric[],
    private readonly kinds: readonly AnomalyKind[],
    private readonly ratePerHour: number,
    private readonly onLabel: (l: Label) => void,
  ) {
    this.rng = streamFor(seed, 'anomaly', device);
  }

  /** Called once per tick, before `apply`: maybe starts an episode. */
  beginTick(tick: number, periodMs: number): void {
    if (this.kinds.length === 0 || this.ratePerHour <= 0) return;
    if (this.rng() >= (this.ratePerHour * periodMs) / 3_600_000) return;
    const metric = pick(this.rng, this.metrics);
    const kind = pick(this.rng, this.kinds);
    const sign = this.rng() < 0.5 ? -1 : 1;
    const durationMs = uniform(this.rng, 10_000, 120_000);
    const size = METRIC_INFO[metric].scale;
    if (this.open.has(metric)) return; // one episode per metric at a time (draws above keep the stream fixed)
    const ticks = kind === 'spike' ? 1 : Math.max(3, Math.round(durationMs / periodMs));
    const magnitude =
      kind === 'spike' ? sign * size * uniform(this.rng, 1.5, 3) : sign * size * (kind === 'drift' ? 2 : 1);
    this.open.set(metric, {
      kind,
      firstTick: tick,
      lastTick: tick + ticks - 1,
      magnitude,
      start: Number.NaN,
      end: Number.NaN,
      stuckValue: null,
    });
  }

  /** The value to send for `metric` at this tick, or null when a dropout suppresses it. */
  apply(metric: Metric, value: number, tick: number, ts: number): number | null {
    const e = this.open.get(metric);
    if (!e) return value;
    if (Number.isNaN(e.start)) e.start = ts;
    e.end = ts;
    const info = METRIC_INFO[metric];
    const clamp = (v: number) => Math.min(info.max, Math.max(info.min, v));
    switch (e.kind) {
      case 'dropout':
        return null;
      case 'stuck':
        e.stuckValue ??= value;
        return e.stuckValue;
      case 'drift': {
        const span = e.lastTick - e.firstTick;
        return clamp(value + (e.magnitude * (tick - e.firstTick)) / (span > 0 ? span : 1));
      }
      default: // spike, step
        return clamp(value + e.magnitude);
    }
  }

  /** Called once per tick after `apply`: closes the episodes whose last sample this was. */
  endTick(tick: number): void {
    for (const [metric, e] of this.open) {
      if (tick >= e.lastTick) this.close(metric, e);
    }
  }

  /** The run ended: label the open episodes up to the last sample they affected. */
  finish(): void {
    for (const [metric, e] of this.open) this.close(metric, e);
  }

  private close(metric: Metric, e: Episode): void {
    this.open.delete(metric);
    if (!Number.isNaN(e.start))
      this.onLabel({ device: this.device, metric, kind: e.kind, start: e.start, end: e.end });
  }
}
