import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ANOMALY_KINDS, type AnomalyKind, DeviceAnomalies, type Label } from './anomalies.ts';
import { Fleet, type Frame } from './fleet.ts';

describe('anomalies', () => {
  it('each kind shapes the values inside its labelled interval', () => {
    for (const kind of ANOMALY_KINDS) {
      const labels: Label[] = [];
      const a = new DeviceAnomalies('s', 'd1', ['temperature'], [kind], 3_600_000, (l) => labels.push(l)); // starts at once
      const out: (number | null)[] = [];
      for (let i = 0; i < 40; i++) {
        a.beginTick(i, 1000);
        out.push(a.apply('temperature', 20, i, 1000 * i));
        a.endTick(i);
      }
      a.finish();
      const l = labels[0]!;
      assert.equal(l.kind, kind);
      const inside = out.slice(l.start / 1000, l.end / 1000 + 1);
      switch (kind) {
        case 'spike':
          assert.equal(l.start, l.end);
          assert.ok(Math.abs(inside[0]! - 20) >= 9, `spike ${inside[0]}`);
          break;
        case 'step':
          assert.ok(inside.every((v) => Math.abs(v! - 20) >= 5));
          break;
        case 'drift':
          assert.ok(Math.abs(inside.at(-1)! - 20) > Math.abs(inside[1]! - 20));
          break;
        case 'stuck':
          assert.ok(inside.every((v) => v === inside[0]));
          break;
        case 'dropout':
          assert.ok(inside.every((v) => v === null));
          break;
      }
      assert.ok(l.end - l.start >= (kind === 'spike' ? 0 : 2000), 'at least 3 samples');
    }
  });

  it('labels match the frames: dropouts leave gaps exactly inside their intervals', () => {
    const labels: Label[] = [];
    const kinds: AnomalyKind[] = ['dropout'];
    const f = new Fleet({
      seed: 'labels',
      devices: ['d1', 'd2'],
      metrics: ['temperature', 'humidity'],
      rateHz: 1,
      startTs: Date.UTC(2024, 0, 1),
      format: 'csv',
      group: false,
      anomalies: kinds,
      anomalyRate: 60,
      clockSkewMs: 1500,
      malformed: 0,
      outOfOrder: 0,
      maxDelayMs: 0,
      duplicates: 0,
      onLabel: (l) => labels.push(l),
    });
    const frames: Frame[] = [];
    for (let i = 0; i < 3600; i++) frames.push(...f.tick(i));
    frames.push(...f.flush());
    assert.ok(labels.length > 20, `${labels.length} labels`);
    const seen = new Set(
      frames.map((fr) =>
        (fr.payload as string)
          .split(',')
          .filter((_, i) => i !== 2)
          .join(','),
      ),
    );
    for (const l of labels) {
      for (let ts = l.start; ts <= l.end; ts += 1000) assert.ok(!seen.has(`${l.device},${l.metric},${ts}`));
      assert.ok(
        seen.has(`${l.device},${l.metric},${l.start - 1000}`) || l.start - 1000 < Date.UTC(2024, 0, 1),
      );
    }
    // Expected ~60 episodes per device-hour, fewer when one is already open on the metric.
    assert.ok(labels.length < 2 * 60 * 1.5);
  });

  it('no anomalies without kinds', () => {
    const labels: Label[] = [];
    const a = new DeviceAnomalies('s', 'd1', ['temperature'], [], 3_600_000, (l) => labels.push(l));
    a.beginTick(0, 1000);
    assert.equal(a.apply('temperature', 20, 0, 0), 20);
    a.finish();
    assert.deepEqual(labels, []);
  });
});
