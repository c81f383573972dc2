// Per-stage delivery latency (issue 19): the buckets both programs use for their
// `edgeflow_<program>_delivery_stage_seconds{stage}` histograms, so one Grafana panel can put the agent's
// and the collector's stages side by side (window close → checkpoint → uplink send → collector PUBACK →
// sink written). Fine below a second, where the real-time target lives (p99 ≤ 700 ms end to end), and
// coarse up to a minute, where an outage or a backlog shows.
export const STAGE_LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60,
];

/** The one method of a prom-client Histogram the data path calls (an injectable, testable surface). */
export interface StageObserver<L extends string = 'stage'> {
  observe(labels: Partial<Record<L, string>>, seconds: number): void;
}
