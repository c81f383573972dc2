// Glob matching for `match: {device, metric}` (SPEC.md section 2) and the per-(device, metric) cache of
// what matched, for windows and rules alike (issue 13: they had a compiler and a cache each).
// `*` is any run of characters, `?` one; everything else is literal. Written here instead of using
// picomatch: device and metric ids are not paths, and picomatch's path semantics (`*` stops at `/`,
// leading dots are hidden, braces/extglobs) would surprise users whose topic-derived ids contain `/` or
// start with `.`. Anchored; `*` runs collapse so no pattern backtracks worse than one `.*` per star.

const SPECIAL = /[\\^$.|+()[\]{}/-]/g;

/** A predicate for one glob; undefined or `*` matches everything. */
export function compileGlob(glob: string | undefined): (s: string) => boolean {
  if (glob === undefined || glob === '*') return () => true;
  if (!/[*?]/.test(glob)) return (s) => s === glob;
  const source = glob.replace(SPECIAL, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.');
  const re = new RegExp(`^${source}$`, 's');
  return (s) => re.test(s);
}

/** Something selected by a device glob and a metric glob (a window spec, a rule). */
export interface Matcher {
  device: (s: string) => boolean;
  metric: (s: string) => boolean;
}

export function compileMatch(match: { device?: string; metric?: string }): Matcher {
  return { device: compileGlob(match.device), metric: compileGlob(match.metric) };
}

/**
 * Which of `items` match a (device, metric) key, remembered per key: a reading's routing is one map
 * lookup after its key's first reading. Bounded: at `max` keys the cache starts over (a fleet with more
 * keys than that pays the glob tests again, never unbounded memory).
 */
export class MatchCache<T> {
  private readonly cache = new Map<string, T[]>();

  constructor(
    private readonly items: readonly T[],
    private readonly matcherOf: (item: T) => Matcher,
    private readonly max: number,
  ) {}

  get(device: string, metric: string): T[] {
    const k = `${device}\u0000${metric}`;
    let list = this.cache.get(k);
    if (list === undefined) {
      list = this.items.filter((it) => {
        const m = this.matcherOf(it);
        return m.device(device) && m.metric(metric);
      });
      if (this.cache.size >= this.max) this.cache.clear();
      this.cache.set(k, list);
    }
    return list;
  }
}
