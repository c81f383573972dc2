import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Label } from './anomalies.ts';
import { Fleet, type FleetOptions, type Frame } from './fleet.ts';

const BASE: FleetOptions = {
  seed: 'fleet',
  devices: ['a-1', 'a-2', 'a-3'],
  metrics: ['temperature', 'vibration', 'current', 'humidity'],
  rateHz: 5,
  startTs: Date.UTC(2024, 5, 1),
  format: 'json',
  group: false,
  anomalies: [],
  anomalyRate: 0,
  clockSkewMs: 0,
  malformed: 0.02,
  outOfOrder: 0.05,
  maxDelayMs: 3000,
  duplicates: 0.02,
};

function run(o: Partial<FleetOptions>, ticks: number): { frames: Frame[]; labels: Label[] } {
  const labels: Label[] = [];
  const f = new Fleet({ ...BASE, onLabel: (l) => labels.push(l), ...o });
  const frames: Frame[] = [];
  for (let i = 0; i < ticks; i++) frames.push(...f.tick(i));
  frames.push(...f.flush());
  return { frames, labels };
}

const bytes = (frames: Frame[]) =>
  frames.map((f) => f.payload.toString('latin1' as BufferEncoding)).join('\n');

describe('fleet', () => {
  it('same seed, same frames (faults and anomalies included); another seed differs', () => {
    const o = { anomalies: ['spike', 'step', 'drift', 'stuck', 'dropout'] as const, anomalyRate: 200 };
    const a = run({ ...o, anomalies: [...o.anomalies] }, 2000);
    const b = run({ ...o, anomalies: [...o.anomalies] }, 2000);
    assert.equal(bytes(a.frames), bytes(b.frames));
    assert.deepEqual(a.labels, b.labels);
    assert.notEqual(
      bytes(a.frames),
      bytes(run({ ...o, anomalies: [...o.anomalies], seed: 'other' }, 2000).frames),
    );
  });

  it('turning faults on does not change the values of the readings', () => {
    const values = (frames: Frame[]) =>
      frames
        .filter((f) => f.kind === 'valid')
        .map((f) => JSON.parse(f.payload as string))
        .sort((x, y) => x.ts - y.ts || x.device.localeCompare(y.device) || x.metric.localeCompare(y.metric));
    const clean = values(run({ malformed: 0, outOfOrder: 0, duplicates: 0 }, 300).frames);
    const faulty = values(run({ malformed: 0, outOfOrder: 0.2, duplicates: 0.1 }, 300).frames);
    assert.deepEqual(faulty, clean);
  });

  it('grouped frames carry every metric of a device tick', () => {
    const { frames } = run({ group: true, malformed: 0, outOfOrder: 0, duplicates: 0 }, 2);
    assert.equal(frames.length, 6);
    assert.deepEqual(Object.keys(JSON.parse(frames[0]!.payload as string)), [
      'device',
      'ts',
      'temperature',
      'vibration',
      'current',
      'humidity',
    ]);
    assert.deepEqual(frames[0]!.readings, BASE.metrics);
  });

  it('clock skew is a fixed offset per device within +-skew', () => {
    const f = new Fleet({
      ...BASE,
      devices: Array.from({ length: 50 }, (_, i) => `d${i}`),
      clockSkewMs: 2000,
    });
    const skews = Object.values(f.skews);
    assert.ok(skews.every((s) => Math.abs(s) <= 2000));
    assert.ok(new Set(skews).size > 40, 'devices get different offsets');
    const frames = f.tick(0).filter((fr) => fr.kind === 'valid');
    for (const fr of frames) {
      const { device, ts } = JSON.parse(fr.payload as string);
      assert.equal(ts - f.trueTs(0), f.skews[device]);
    }
  });

  it('ticks must come in order', () => {
    const f = new Fleet(BASE);
    f.tick(0);
    assert.throws(() => f.tick(2), RangeError);
  });
});
