import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { FakeClock } from '../shared/clock.ts';
import { Fleet, type FleetOptions, type Frame } from './fleet.ts';
import type { Confirm, Output } from './outputs/output.ts';
import { type Report, Tally } from './report.ts';
import { Runner } from './runner.ts';

const FLEET: FleetOptions = {
  seed: 'runner',
  devices: ['d1', 'd2'],
  metrics: ['temperature', 'humidity'],
  rateHz: 10,
  startTs: Date.UTC(2024, 0, 1),
  format: 'json',
  group: false,
  anomalies: [],
  anomalyRate: 0,
  clockSkewMs: 0,
  malformed: 0.05,
  outOfOrder: 0.05,
  maxDelayMs: 1000,
  duplicates: 0.05,
};

/** Keeps what it is given; `writeCostMs` advances the fake clock per write, like a slow transport. */
class MemoryOutput implements Output {
  readonly name = 'memory';
  frames: Frame[] = [];
  writes = 0;
  closed = false;
  constructor(
    private readonly clock: FakeClock,
    private readonly writeCostMs = 0,
    private readonly reject: (f: Frame) => boolean = () => false,
  ) {}
  async open() {}
  async write(frames: readonly Frame[], sink: Confirm) {
    this.writes++;
    await tick();
    if (this.writeCostMs > 0) this.clock.advance(this.writeCostMs);
    for (const f of frames) {
      if (this.reject(f)) sink.failed(f);
      else {
        this.frames.push(f);
        sink.written(f);
      }
    }
  }
  async close() {
    this.closed = true;
  }
}

async function drive(clock: FakeClock, runner: Runner, opts: { stopAfterMs?: number } = {}): Promise<Report> {
  let report: Report | null = null;
  let failure: unknown = null;
  runner.run().then(
    (r) => {
      report = r;
    },
    (e) => {
      failure = e;
    },
  );
  let elapsed = 0;
  while (report === null && failure === null) {
    await tick();
    clock.advance(5);
    elapsed += 5;
    if (opts.stopAfterMs !== undefined && elapsed >= opts.stopAfterMs) runner.stop();
  }
  if (failure) throw failure;
  return report!;
}

function recount(frames: readonly Frame[]) {
  const t = new Tally();
  for (const f of frames) t.written(f);
  return t;
}

describe('runner', () => {
  it('runs exactly --count ticks on schedule and reports what the output confirmed', async () => {
    const clock = new FakeClock();
    const out = new MemoryOutput(clock);
    const runner = new Runner(new Fleet(FLEET), out, {
      ticks: 100,
      endKind: 'count',
      readingsPerTick: 4,
      clock,
    });
    const r = await drive(clock, runner);
    assert.equal(r.ticks, 100);
    assert.equal(r.stoppedBy, 'count');
    assert.ok(out.closed);
    assert.equal(r.framesSent, out.frames.length);
    const t = recount(out.frames);
    assert.equal(r.readingsSent, t.readingsSent);
    assert.equal(r.sent.total, r.readingsSent);
    assert.deepEqual(r.sent.byDeviceMetric, t.byDeviceMetric());
    assert.equal(r.malformed + r.duplicates + (r.framesSent - r.malformed - r.duplicates), r.framesSent);
    assert.equal(
      r.readingsSent + r.malformed,
      400,
      'every reading either valid or replaced by a malformed frame',
    );
    assert.ok(r.malformed > 0 && r.duplicates > 0 && r.outOfOrder > 0);
    assert.equal(r.heldBackDiscarded, 0);
    assert.equal(r.targetRateHz, 40);
    // Fake time: ticks land exactly on their 5 ms steps, so the rate is exact up to the malformed share.
    assert.ok(Math.abs(r.achievedRateHz - (40 * r.readingsSent) / 400) < 0.5, `${r.achievedRateHz}`);
    assert.ok(r.maxLagMs <= 5);
  });

  it('batches ticks that fell behind and still produces every one (back-pressure)', async () => {
    const clock = new FakeClock();
    const out = new MemoryOutput(clock, 120); // each write takes longer than a tick period
    const runner = new Runner(new Fleet({ ...FLEET, rateHz: 100 }), out, {
      ticks: 500,
      endKind: 'duration',
      readingsPerTick: 4,
      clock,
    });
    const r = await drive(clock, runner);
    assert.equal(r.ticks, 500);
    assert.ok(out.writes < 100, `${out.writes} writes for 500 ticks`);
    assert.ok(r.maxLagMs >= 100);
    assert.equal(r.framesSent, out.frames.length);
  });

  it('a stop drops held-back frames and counts only what was written', async () => {
    const clock = new FakeClock();
    const out = new MemoryOutput(clock);
    const runner = new Runner(new Fleet({ ...FLEET, outOfOrder: 0.5 }), out, {
      ticks: null,
      endKind: 'count',
      readingsPerTick: 4,
      clock,
    });
    const r = await drive(clock, runner, { stopAfterMs: 2000 });
    assert.equal(r.stoppedBy, 'signal');
    assert.ok(r.heldBackDiscarded > 0);
    assert.ok(r.ticks >= 20 && r.ticks <= 22, `${r.ticks} ticks`);
    assert.equal(r.framesSent, out.frames.length);
    assert.equal(r.readingsSent, recount(out.frames).readingsSent);
  });

  it('frames the output failed are counted as failed, not sent', async () => {
    const clock = new FakeClock();
    const out = new MemoryOutput(clock, 0, (f) => f.device === 'd2');
    const runner = new Runner(new Fleet({ ...FLEET, malformed: 0, duplicates: 0 }), out, {
      ticks: 10,
      endKind: 'count',
      readingsPerTick: 4,
      clock,
    });
    const r = await drive(clock, runner);
    assert.equal(r.failed, 20);
    assert.equal(r.readingsSent, 20);
    assert.deepEqual(Object.keys(r.sent.byDeviceMetric), ['d1/humidity', 'd1/temperature']);
  });
});
