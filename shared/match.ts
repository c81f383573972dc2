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
 * Which of `items` match a (device, metric) key, remembered per key as a route built once from them: a
 * reading's routing is two map lookups after its key's first reading, with no string built per reading
 * (issue 14: device → metric maps instead of a joined key). `route` lets a caller keep per-key data beside
 * the matched items (the windows' key names, the rules' key states). Bounded: at `max` keys the cache
 * starts over (a fleet with more keys than that pays the glob tests again, never unbounded memory).
 */
export class MatchCache<T, R = T[]> {
  private readonly cache = new Map<string, Map<string, R>>();
  private size = 0;
  /**
   * One array per distinct list of matched items (by their indices), shared by every key that matches
   * the same ones: at 10,000 keys a list per key was 10,000 arrays of ~180 B (a filtered array keeps
   * room to grow), the same 3 or 4 lists over again (issue 14). Routes must not modify it.
   */
  private readonly lists = new Map<string, T[]>();

  constructor(
    private readonly items: readonly T[],
    private readonly matcherOf: (item: T) => Matcher,
    private readonly max: number,
    private readonly route: (matched: T[], device: string, metric: string) => R = (m) => m as unknown as R,
  ) {}

  get(device: string, metric: string): R {
    let byMetric = this.cache.get(device);
    let r = byMetric?.get(metric);
    if (r === undefined) {
      const idx: number[] = [];
      for (let i = 0; i < this.items.length; i++) {
        const m = this.matcherOf(this.items[i] as T);
        if (m.device(device) && m.metric(metric)) idx.push(i);
      }
      const which = idx.join(',');
      let matched = this.lists.get(which);
      if (matched === undefined) {
        matched = idx.map((i) => this.items[i] as T);
        this.lists.set(which, matched);
      }
      r = this.route(matched, device, metric);
      if (this.size >= this.max) {
        this.cache.clear();
        this.lists.clear();
        this.size = 0;
        byMetric = undefined;
      }
      if (byMetric === undefined) {
        byMetric = new Map();
        this.cache.set(device, byMetric);
      }
      byMetric.set(metric, r);
      this.size++;
    }
    return r;
  }
}
