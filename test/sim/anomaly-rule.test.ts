// Issue 11, "in the product": the simulator's labelled anomalies through the default `anomaly` rule.
// A fleet of 4 devices × 4 metrics at 0.1 Hz for 3 days of event time (the first day is the model's
// warm-up and is not scored), spikes, steps and drifts injected at 0.1 episodes per device-hour, frames
// decoded by the agent's JSON decoder, one RuleEngine with `{kind: anomaly}` and nothing else set.
//
// Bounds (measured on this seed: 13 of 26 episodes found, 1 false alarm in 8 device-days):
//   - false alarms ≤ 0.5 per device-day: the defaults' budget is a tail of 1e-4 per reading and one
//     alert per key per 6 h at most (docs/design/anomaly.md); 0.5 is 4× what we measure, and the
//     flooding this issue fixed (spike: 11 alerts a day per series on NAB) is 80× above it;
//   - recall ≥ 1/3 of all episodes and ≥ 40 % of spikes and drifts: episodes last 10-120 s (3-12
//     readings here), well under the model's 30-minute short span, so only those that leave the range
//     seen (spikes of 1.5-3× the metric's scale) or build up (drifts to 2×) are the defaults' job;
//     steps of 1× scale for a minute are at the limit of what a 30-minute likelihood sees.
// A label counts as found by a firing alert of its device and metric between its start and 10 min
// after its end; any other firing alert is a false alarm.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDecoder } from '../../agent/decoders/index.ts';
import { RuleEngine, type RuleSpec } from '../../agent/rules/engine.ts';
import type { Label } from '../../firmware-sim/anomalies.ts';
import { Fleet } from '../../firmware-sim/fleet.ts';
import { FakeClock } from '../../shared/clock.ts';
import type { Alert } from '../../shared/model.ts';

const DAY = 86_400_000;
const START = Date.UTC(2024, 5, 1);
const DEVICES = ['d1', 'd2', 'd3', 'd4'];
const RATE_HZ = 0.1;
const DAYS = 3;
const SLACK = 10 * 60_000;

describe('default anomaly rule on the simulated fleet', () => {
  it('finds the labelled spikes and drifts within the false-alarm budget', () => {
    const labels: Label[] = [];
    const fleet = new Fleet({
      seed: 'anomaly-test',
      devices: DEVICES,
      metrics: ['temperature', 'vibration', 'current', 'humidity'],
      rateHz: RATE_HZ,
      startTs: START,
      format: 'json',
      group: false,
      anomalies: ['spike', 'step', 'drift'],
      anomalyRate: 0.1,
      clockSkewMs: 0,
      malformed: 0,
      outOfOrder: 0,
      maxDelayMs: 0,
      duplicates: 0,
      onLabel: (l) => labels.push(l),
    });
    const alerts: Alert[] = [];
    const engine = new RuleEngine(
      [{ name: 'anomaly', kind: 'anomaly' } as RuleSpec],
      { agentId: 'gw-sim', clock: new FakeClock(START) },
      { alert: (a) => alerts.push(a) },
    );
    const decoder = createDecoder('json');
    let readings = 0;
    let scored = 0;
    const ticks = DAYS * 86_400 * RATE_HZ;
    for (let i = 0; i < ticks; i++) {
      for (const frame of fleet.tick(i)) {
        for (const r of decoder.decode(frame.payload, { arrivalTs: START })) {
          readings++;
          if (engine.onReading(r) !== undefined) scored++;
        }
      }
    }
    assert.equal(readings, ticks * 16, 'every reading decoded');
    assert.ok(scored > readings / 2, 'scored after warm-up');

    const scoredFrom = START + DAY;
    const fired = alerts.filter((a) => a.state === 'firing' && a.ts >= scoredFrom);
    const inLabel = (a: Alert, l: Label) =>
      a.device === l.device && a.metric === l.metric && a.ts >= l.start && a.ts <= l.end + SLACK;
    const scoredLabels = labels.filter((l) => l.start >= scoredFrom);
    const found = scoredLabels.filter((l) => fired.some((a) => inLabel(a, l)));
    const falseAlarms = fired.filter((a) => !scoredLabels.some((l) => inLabel(a, l)));
    const deviceDays = DEVICES.length * (DAYS - 1);
    const spikesDrifts = scoredLabels.filter((l) => l.kind !== 'step');
    const foundSD = found.filter((l) => l.kind !== 'step');
    const report = `found ${found.length}/${scoredLabels.length} (spikes+drifts ${foundSD.length}/${spikesDrifts.length}), false alarms ${falseAlarms.length} in ${deviceDays} device-days`;

    assert.ok(scoredLabels.length >= 15, `enough labelled episodes to judge: ${report}`);
    assert.ok(falseAlarms.length / deviceDays <= 0.5, report);
    assert.ok(found.length >= scoredLabels.length / 3, report);
    assert.ok(foundSD.length >= 0.4 * spikesDrifts.length, report);
    for (const a of fired)
      assert.ok(a.score !== undefined && a.score >= 0.4, 'firing alerts carry their score');
  });
});
