import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDecoder, FrameError } from '../agent/decoders/index.ts';
import { HoldBack, MALFORMED_KINDS, malformedPayload } from './faults.ts';
import { Fleet, type FleetOptions, type Frame } from './fleet.ts';
import { FORMATS, type FrameContent } from './formats.ts';
import { mulberry32 } from './prng.ts';

const BASE: FleetOptions = {
  seed: 'faults',
  devices: Array.from({ length: 10 }, (_, i) => `dev-${i}`),
  metrics: ['temperature', 'current'],
  rateHz: 10,
  startTs: Date.UTC(2024, 0, 1),
  format: 'json',
  group: false,
  anomalies: [],
  anomalyRate: 0,
  clockSkewMs: 0,
  malformed: 0,
  outOfOrder: 0,
  maxDelayMs: 3000,
  duplicates: 0,
};

function run(o: Partial<FleetOptions>, ticks: number): Frame[] {
  const f = new Fleet({ ...BASE, ...o });
  const out: Frame[] = [];
  for (let i = 0; i < ticks; i++) out.push(...f.tick(i));
  out.push(...f.flush());
  return out;
}

/** Within 5 standard deviations of a binomial(n, p) mean. */
function near(count: number, n: number, p: number, what: string) {
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(count - n * p) <= 5 * sd + 1, `${what}: ${count} of ${n}, expected about ${n * p}`);
}

describe('malformed frames', () => {
  it('no agent decoder reads a reading out of any malformed variant', () => {
    const rng = mulberry32(9);
    const single: FrameContent = { device: 'dev-001', ts: 1700000000123, values: [['temperature', 21.5]] };
    const grouped: FrameContent = { ...single, values: [...single.values, ['humidity', 40.2]] };
    for (const format of FORMATS) {
      const decoder = createDecoder(format);
      for (const c of format === 'csv' || format === 'number' ? [single] : [single, grouped]) {
        for (const kind of MALFORMED_KINDS) {
          for (let i = 0; i < 200; i++) {
            const p = malformedPayload(format, c, kind, rng);
            assert.ok(!(typeof p === 'string' && p.includes('\n')), 'one line');
            assert.throws(
              () => decoder.decode(p, { arrivalTs: 1, device: 'dev-001', metric: 'temperature' }),
              (e) => e instanceof FrameError,
              `${format} ${kind} ${JSON.stringify(p.toString())}`,
            );
          }
        }
      }
    }
  });

  it('the malformed rate is honoured and malformed frames carry no readings', () => {
    const frames = run({ malformed: 0.05 }, 1000); // 20,000 frames
    const bad = frames.filter((f) => f.kind === 'malformed');
    near(bad.length, 20_000, 0.05, 'malformed');
    assert.ok(bad.every((f) => f.readings.length === 0));
  });
});

describe('duplicates and late frames', () => {
  it('a duplicate is an identical copy right after its original', () => {
    const frames = run({ duplicates: 0.02 }, 1000);
    const dups = frames.map((f, i) => [f, i] as const).filter(([f]) => f.kind === 'duplicate');
    near(dups.length, 20_000, 0.02, 'duplicates');
    for (const [d, i] of dups) {
      assert.equal(frames[i - 1]!.kind, 'valid');
      assert.deepEqual(d.payload, frames[i - 1]!.payload);
    }
    assert.equal(frames.filter((f) => f.kind === 'valid').length, 20_000);
  });

  it('held-back frames come later, older than what was already sent, and none are lost', () => {
    const frames = run({ outOfOrder: 0.05, maxDelayMs: 2000 }, 1000);
    const valid = frames.filter((f) => f.kind === 'valid');
    assert.equal(valid.length, 20_000);
    // Check the flag the way a receiver would: older than the newest reading of the device/metric so far.
    const newest = new Map<string, number>();
    let late = 0;
    for (const f of valid) {
      const { ts, device, metric } = JSON.parse(f.payload as string);
      const k = `${device}/${metric}`;
      const isLate = ts < (newest.get(k) ?? Number.NEGATIVE_INFINITY);
      assert.equal(f.outOfOrder, isLate, f.payload as string);
      if (isLate) late++;
      newest.set(k, Math.max(ts, newest.get(k) ?? ts));
    }
    near(late, 20_000, 0.05, 'out of order');
  });

  it('a late frame is released no later than max-delay after its time (plus one tick)', () => {
    const f = new Fleet({ ...BASE, outOfOrder: 0.1, maxDelayMs: 500 });
    for (let i = 0; i < 200; i++) {
      const now = f.trueTs(i);
      for (const fr of f.tick(i)) {
        const { ts } = JSON.parse(fr.payload as string);
        assert.ok(now - ts <= 500 + 100, `released ${now - ts} ms late`);
      }
    }
  });

  it('an interrupted run discards held-back frames', () => {
    const f = new Fleet({ ...BASE, outOfOrder: 0.5 });
    f.tick(0);
    const held = f.heldBack;
    assert.ok(held > 0);
    assert.equal(f.discard(), held);
    assert.equal(f.heldBack, 0);
  });

  it('HoldBack releases in release order, ties in insertion order', () => {
    const h = new HoldBack<string>();
    h.add('c', 30);
    h.add('a', 10);
    h.add('b', 10);
    h.add('d', 40);
    assert.deepEqual(h.takeDue(5), []);
    assert.deepEqual(h.takeDue(30), ['a', 'b', 'c']);
    assert.deepEqual(h.drain(), ['d']);
  });
});
