// The uplink runner's arithmetic, apart from its loop: the byte cut of a batch, the batch envelope
// (with gzip), the drain-rate token bucket and the commit marks of the uplink_queue stage.
import { gzipSync } from 'node:zlib';
import type { StoredItem } from '../outbox/outbox.ts';

/** The longest prefix of `items` whose batch stays within `maxBytes` (at least one item). */
export function cutToBytes(items: StoredItem[], maxBytes: number): StoredItem[] {
  let size = 128; // envelope: {"v":1,"agent":...,"batch":...,"items":[]}
  for (let i = 0; i < items.length; i++) {
    size += items[i]!.json.length + 1;
    if (size > maxBytes && i > 0) return items.slice(0, i);
  }
  return items;
}

/** The batch envelope of SPEC.md section 3, gzipped from `gzipFrom` bytes (undefined: never). */
export function encodeBatch(
  agentId: string,
  batchId: string,
  items: readonly StoredItem[],
  gzipFrom: number | undefined,
): { payload: Buffer; contentType: string } {
  // The stored JSON is spliced in as is: no parse/stringify per item on the hot path.
  const parts = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) parts[i] = items[i]!.json;
  const payload = Buffer.from(
    `{"v":1,"agent":${JSON.stringify(agentId)},"batch":${JSON.stringify(batchId)},"items":[${parts.join(',')}]}`,
  );
  if (gzipFrom !== undefined && payload.length >= gzipFrom)
    // sync keeps publish order = drain order; ~1 ms for a 150 KB batch
    return { payload: gzipSync(payload), contentType: 'application/json+gzip' };
  return { payload, contentType: 'application/json' };
}

/** Token bucket for `drainRate` items/s, burst = one batch. Times are monotonic ms. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Returns 0 and takes `n` tokens, or the ms to wait until they are there. */
  take(n: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    return Math.ceil(((n - this.tokens) * 1000) / this.rate);
  }
}

/**
 * Commit marks kept for the uplink_queue stage: enough for ~7 minutes of checkpoints at 10/s. Items
 * committed before the oldest mark (a longer outage, or by an earlier process) are not observed; the
 * outbox_oldest_age gauge shows those.
 */
const MAX_COMMIT_MARKS = 4096;

/** Seq ranges of recent checkpoints with the monotonic time of their commit, oldest first. */
export class CommitMarks {
  private marks: { from: number; to: number; at: number }[] = [];

  add(from: number, to: number, at: number): void {
    if (to < from) return;
    this.marks.push({ from, to, at });
    if (this.marks.length > MAX_COMMIT_MARKS) this.marks.splice(0, MAX_COMMIT_MARKS / 4);
  }

  /** When the item `seq` was committed (monotonic), undefined if unknown. */
  committedAt(seq: number): number | undefined {
    const m = this.marks;
    // The first mark whose range ends at or above seq (binary search: marks ascend).
    let lo = 0;
    let hi = m.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (m[mid]!.to >= seq) hi = mid;
      else lo = mid + 1;
    }
    const mark = m[lo];
    return mark && mark.from <= seq ? mark.at : undefined;
  }
}
