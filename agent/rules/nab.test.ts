// Rules against real labelled data: the Numenta Anomaly Benchmark (NAB v1.1, MIT licence). Not a
// score (that needs NAB's scorer); a regression guard that the detectors find labelled anomalies of
// the kind they are meant for without flooding the rest. Skipped when the data set is not present
// (set EDGEFLOW_NAB_DIR, shared/outside.ts; layout data/<category>/<file>.csv + labels/).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { notFound, outsidePath } from '../../shared/outside.ts';
import type { RuleSpecInput } from './engine.ts';
import { harness } from './testkit.ts';

const NAB = outsidePath('nab');
const skip = existsSync(join(NAB, 'labels', 'combined_windows.json')) ? false : notFound('nab', 'NAB data');

const toMs = (s: string) => Date.parse(`${s.slice(0, 19).replace(' ', 'T')}Z`);

interface Outcome {
  /** Per labelled window (after the probationary period): did the rule fire inside it? */
  hits: boolean[];
  /** Firing alerts after the probationary period outside every window. */
  falsePositives: number;
}

function run(file: string, spec: RuleSpecInput): Outcome {
  const windows = JSON.parse(readFileSync(join(NAB, 'labels', 'combined_windows.json'), 'utf8')) as Record<
    string,
    string[][]
  >;
  const rows = readFileSync(join(NAB, 'data', file), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [t, v] = l.replace('\r', '').split(',');
      return { ts: toMs(t!), value: Number(v) };
    });
  const wins = (windows[file] ?? []).map(([a, b]) => [toMs(a!), toMs(b!)] as const);
  const h = harness([spec]);
  for (const r of rows) h.engine.onReading({ device: 'nab', metric: 'value', value: r.value, ts: r.ts });
  // NAB never scores the first min(15%, 750) rows (the detector's learning period).
  const probationEnd = rows[Math.min(Math.floor(0.15 * rows.length), 750)]!.ts;
  const fires = h.alerts.filter((a) => a.state === 'firing' && a.ts >= probationEnd);
  const inside = (ts: number) => wins.some(([a, b]) => ts >= a && ts <= b);
  return {
    hits: wins.map(([a, b]) => fires.some((f) => f.ts >= a && f.ts <= b)),
    falsePositives: fires.filter((f) => !inside(f.ts)).length,
  };
}

// 5-minute data: 288 samples are one day.
const ewma: RuleSpecInput = {
  name: 'z',
  kind: 'zscore',
  mode: 'ewma',
  alpha: 0.01,
  threshold: 5,
  warmup: 288,
};

describe('NAB labelled anomalies', { skip }, () => {
  it('zscore (ewma) finds the level jump of art_daily_jumpsup and nothing else', () => {
    const o = run('artificialWithAnomaly/art_daily_jumpsup.csv', ewma);
    assert.deepEqual(o, { hits: [true], falsePositives: 0 });
  });

  it('zscore (ewma) finds the failures of machine_temperature_system_failure with at most 2 false alarms', () => {
    const o = run('realKnownCause/machine_temperature_system_failure.csv', ewma);
    assert.ok(o.hits.filter(Boolean).length >= 2, `windows hit: ${o.hits}`);
    assert.ok(o.falsePositives <= 2, `${o.falsePositives} false positives`);
  });

  it('spike finds the labelled window of art_load_balancer_spikes', () => {
    const o = run('artificialWithAnomaly/art_load_balancer_spikes.csv', { name: 's', kind: 'spike' });
    assert.deepEqual(o.hits, [true]);
  });

  it('flatline finds the flat middle of art_daily_flatmiddle and nothing else', () => {
    const o = run('artificialWithAnomaly/art_daily_flatmiddle.csv', {
      name: 'f',
      kind: 'flatline',
      for: '2h',
    });
    assert.deepEqual(o, { hits: [true], falsePositives: 0 });
  });

  it('changepoint finds both failures of ambient_temperature_system_failure', () => {
    const o = run('realKnownCause/ambient_temperature_system_failure.csv', {
      name: 'c',
      kind: 'changepoint',
      warmup: 288,
    });
    assert.deepEqual(o.hits, [true, true]);
  });

  it('no rule fires on art_noisy (no anomaly)', () => {
    for (const spec of [
      ewma,
      { name: 's', kind: 'spike' },
      { name: 'c', kind: 'changepoint', warmup: 288 },
      { name: 'f', kind: 'flatline', for: '2h' },
    ] as RuleSpecInput[]) {
      assert.equal(run('artificialNoAnomaly/art_noisy.csv', spec).falsePositives, 0, spec.kind);
    }
  });
});
