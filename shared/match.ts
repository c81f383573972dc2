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
 * A two-level memo (a → b → value) that starts over at `max` entries: never unbounded memory, and a
 * lookup of a known pair is two map lookups with nothing built (issue 14). `onClear` lets an owner drop
 * what it keeps beside the entries.
 */
export class BoundedMemo<A, B, V> {
  private readonly map = new Map<A, Map<B, V>>();
  private size = 0;

  constructor(
    private readonly max: number,
    private readonly onClear: () => void = () => {},
  ) {}

  /** The value for (a, b), computed and kept on first use. */
  get(a: A, b: B, compute: (a: A, b: B) => V): V {
    let byB = this.map.get(a);
    let v = byB?.get(b);
    if (v === undefined) {
      v = compute(a, b);
      if (this.size >= this.max) {
        this.map.clear();
        this.size = 0;
        this.onClear();
        byB = undefined;
      }
      if (byB === undefined) {
        byB = new Map();
        this.map.set(a, byB);
      }
      byB.set(b, v);
      this.size++;
    }
    return v;
  }
}

/**
 * Which of `items` match a (device, metric) key, remembered per key as a route built once from them: a
 * reading's routing is two map lookups after its key's first reading, with no string built per reading
 * (issue 14: device → metric maps instead of a joined key). `route` lets a caller keep per-key data beside
 * the matched items (the windows' key names, the rules' key states). Bounded: at `max` keys the cache
 * starts over (a fleet with more keys than that pays the glob tests again, never unbounded memory).
 */
export class MatchCache<T, R = T[]> {
  /**
   * One array per distinct list of matched items (by their indices), shared by every key that matches
   * the same ones: at 10,000 keys a list per key was 10,000 arrays of ~180 B (a filtered array keeps
   * room to grow), the same 3 or 4 lists over again (issue 14). Routes must not modify it.
   */
  private readonly lists = new Map<string, T[]>();
  private readonly routes: BoundedMemo<string, string, R>;

  constructor(
    private readonly items: readonly T[],
    private readonly matcherOf: (item: T) => Matcher,
    max: number,
    private readonly route: (matched: T[], device: string, metric: string) => R = (m) => m as unknown as R,
  ) {
    this.routes = new BoundedMemo(max, () => this.lists.clear());
  }

  get(device: string, metric: string): R {
    return this.routes.get(device, metric, this.build);
  }

  private readonly build = (device: string, metric: string): R => {
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
    return this.route(matched, device, metric);
  };
}
