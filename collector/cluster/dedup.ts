// The forwarder's de-duplication state for one input partition (docs/design/cluster.md "Dedup state"):
// per window (the forwarder uses one per agent and kind), the last `perAgent` dedup keys seen, most recently seen last. A key seen again moves to
// the end (so the window is measured from the latest copy, not the first). Every change is also returned
// as changelog operations (put on first sight or refresh, tombstone on eviction), which the forwarder
// commits in the same transaction as the output: restoring = replaying the changelog partition in order.
// Pure: no I/O, no clock.
import type { ChangelogOp } from './log.ts';

const SEP = '\u0000';

export function changelogKey(agent: string, dedupKey: string): string {
  return `${agent}${SEP}${dedupKey}`;
}

export class DedupWindow {
  /** agent → its keys in insertion (refresh) order; a Map keeps insertion order. */
  private readonly agents = new Map<string, Map<string, true>>();
  private size = 0;

  constructor(private readonly perAgent: number) {}

  get keys(): number {
    return this.size;
  }

  /**
   * Records one (agent, key). Returns true if it was new (forward the item), false for a duplicate.
   * Changelog operations for this change are appended to `ops`.
   */
  see(agent: string, key: string, ops: ChangelogOp[]): boolean {
    let m = this.agents.get(agent);
    if (!m) {
      m = new Map();
      this.agents.set(agent, m);
    }
    const ck = changelogKey(agent, key);
    if (m.has(key)) {
      m.delete(key);
      m.set(key, true);
      ops.push({ key: ck, value: '1' });
      return false;
    }
    m.set(key, true);
    this.size++;
    ops.push({ key: ck, value: '1' });
    if (m.size > this.perAgent) {
      for (const oldest of m.keys()) {
        m.delete(oldest);
        this.size--;
        ops.push({ key: changelogKey(agent, oldest), value: null });
        if (m.size <= this.perAgent) break;
      }
    }
    return true;
  }

  /** Applies one changelog record while restoring (same order as written). */
  apply(changelogKeyText: string, value: string | null): void {
    const i = changelogKeyText.indexOf(SEP);
    if (i < 0) return;
    const agent = changelogKeyText.slice(0, i);
    const key = changelogKeyText.slice(i + 1);
    let m = this.agents.get(agent);
    if (value === null) {
      if (m?.delete(key)) this.size--;
      return;
    }
    if (!m) {
      m = new Map();
      this.agents.set(agent, m);
    }
    if (m.has(key)) m.delete(key);
    else this.size++;
    m.set(key, true);
  }

  has(agent: string, key: string): boolean {
    return this.agents.get(agent)?.has(key) ?? false;
  }
}
