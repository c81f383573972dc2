// The NAB corpus as the bench and the tests read it: EDGEFLOW_NAB_DIR (shared/outside.ts; data/<category>/<file>.csv,
// labels/combined_windows.json), rows in file order, windows as row indices (SCORING.md §1: the first
// row whose timestamp equals the boundary). Timestamps are naive; we read them as UTC.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { outsidePath } from '../../shared/outside.ts';
import type { RowWindow } from './scorer.ts';

export const NAB_DIR = outsidePath('nab');

export interface NabFile {
  /** `<category>/<name>.csv`, the key of combined_windows.json */
  key: string;
  ts: Float64Array;
  values: Float64Array;
  windows: RowWindow[];
}

const toMs = (s: string): number => Date.parse(`${s.slice(0, 19).replace(' ', 'T')}Z`);

export function nabPresent(dir = NAB_DIR): boolean {
  return existsSync(join(dir, 'labels', 'combined_windows.json'));
}

/** Every data file present under `dir` with its windows (files without a labels entry are skipped). */
export function loadNab(dir = NAB_DIR): NabFile[] {
  const labels = JSON.parse(readFileSync(join(dir, 'labels', 'combined_windows.json'), 'utf8')) as Record<
    string,
    [string, string][]
  >;
  const out: NabFile[] = [];
  for (const cat of readdirSync(join(dir, 'data')).sort()) {
    for (const f of readdirSync(join(dir, 'data', cat)).sort()) {
      const key = `${cat}/${f}`;
      const wins = labels[key];
      if (!f.endsWith('.csv') || wins === undefined) continue;
      const lines = readFileSync(join(dir, 'data', cat, f), 'utf8')
        .split('\n')
        .slice(1);
      const ts: number[] = [];
      const values: number[] = [];
      for (const l of lines) {
        const line = l.replace('\r', '');
        if (line.trim() === '') continue;
        const comma = line.indexOf(',');
        ts.push(toMs(line.slice(0, comma)));
        values.push(Number(line.slice(comma + 1)));
      }
      const first = (t: number) => {
        const i = ts.indexOf(t);
        if (i < 0) throw new Error(`${key}: window bound ${new Date(t).toISOString()} is no row's timestamp`);
        return i;
      };
      out.push({
        key,
        ts: Float64Array.from(ts),
        values: Float64Array.from(values),
        windows: wins.map(([a, b]) => ({ left: first(toMs(a)), right: first(toMs(b)) })),
      });
    }
  }
  return out;
}
