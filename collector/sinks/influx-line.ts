// A summary's InfluxDB line without the client's `Point` (the InfluxDB sink's hot path, issue 18).
//
// Why: in bench/collector.ts the InfluxDB sink thread spent more time building `Point`s and their line
// protocol (an object per point, a map of fields, `Object.keys().sort()` of fields and tags, an escaper
// call per tag) than in anything else, ~6 of its ~18 busy seconds per 200k summaries. Summaries are
// nearly all of the traffic, and their tags and fields are fixed, so the sorted order is known up front.
// The output is byte for byte what `summaryPoint(agent, s).toLineProtocol()` (shared/influx.ts, the
// mapping of SPEC.md section 4) gives; influx-line.test.ts checks it on random summaries, escaping
// included. Alerts and statuses are rare and keep the `Point` path.
import { AGGREGATES, type Summary } from '../../shared/model.ts';

/** Fields of a summary point in the order `Point.toLineProtocol()` writes them (sorted by name). */
const FIELDS: readonly { name: string; key: keyof Summary; int: boolean }[] = [
  ...AGGREGATES.map((a) => ({ name: a, key: a as keyof Summary, int: a === 'count' })),
  { name: 'late', key: 'late' as const, int: true },
  { name: 'rev', key: 'rev' as const, int: true },
].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

// The client's tag escaper (src/util/escape.ts): `,`, space, `=`, and line breaks/tabs.
const TAG_SPECIAL = /[, =\n\r\t]/;
const TAG_ESCAPES: Record<string, string> = {
  ',': '\\,',
  ' ': '\\ ',
  '=': '\\=',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};
const TAG_SPECIAL_ALL = /[, =\n\r\t]/g;

function tag(name: string, value: string): string {
  // The client leaves out tags with an empty value.
  if (!value) return '';
  return `,${name}=${TAG_SPECIAL.test(value) ? value.replace(TAG_SPECIAL_ALL, (c) => TAG_ESCAPES[c]!) : value}`;
}

function intValue(name: string, v: number): string {
  // As Point.intField: outside the int64 range is an error, not a silently wrong point.
  if (Number.isNaN(v) || v <= -9223372036854776e3 || v >= 9223372036854776e3)
    throw new Error(`invalid integer value for field '${name}': '${v}'!`);
  return `${Math.floor(v)}i`;
}

/** `summaryPoint(agent, s).toLineProtocol()`, built directly. */
export function summaryLine(agent: string, s: Summary): string {
  let fields = '';
  for (const f of FIELDS) {
    let text: string;
    if (f.int) {
      // late defaults to 0 (summaryPoint: `s.late ?? 0`); count and rev are required by the schema.
      text = intValue(f.name, (s[f.key] as number | undefined) ?? 0);
    } else {
      const v = s[f.key];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      text = String(v);
    }
    fields += `${fields.length > 0 ? ',' : ''}${f.name}=${text}`;
  }
  const tags = `${tag('agent', agent)}${tag('device', s.device)}${tag('metric', s.metric)}${tag('window', s.window.name)}`;
  return `edgeflow_summary${tags} ${fields} ${String(Math.floor(s.window.start))}`;
}
