// A fixed-capacity ring of numbers kept as plain JSON (checkpointed as is).
export interface Ring {
  buf: number[];
  next: number;
}

export function ringInit(): Ring {
  return { buf: [], next: 0 };
}

/** Adds `x`; returns the value it overwrote when the ring was full. */
export function ringPush(r: Ring, cap: number, x: number): number | undefined {
  if (r.buf.length < cap) {
    r.buf.push(x);
    r.next = r.buf.length % cap;
    return undefined;
  }
  const old = r.buf[r.next];
  r.buf[r.next] = x;
  r.next = (r.next + 1) % cap;
  return old;
}

/** First index with a[i] >= x in ascending `a`. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Shifted in place rather than with splice, which returns a new array (of the removed values) per call:
// spike inserts and removes once per reading (issue 14).
export function sortedInsert(a: number[], x: number): void {
  const at = lowerBound(a, x);
  a.push(x);
  for (let j = a.length - 1; j > at; j--) a[j] = a[j - 1]!;
  a[at] = x;
}

export function sortedRemove(a: number[], x: number): void {
  const i = lowerBound(a, x);
  if (a[i] !== x) return;
  for (let j = i; j < a.length - 1; j++) a[j] = a[j + 1]!;
  a.pop();
}

/**
 * sortedRemove(a, old) then sortedInsert(a, x) in one shift of the values between the two places
 * instead of two shifts of everything after each (issue 14, branch `rules`: spike's full count window
 * evicts one value per value admitted). The same array afterwards, element for element.
 */
export function sortedReplace(a: number[], old: number, x: number): void {
  const i = lowerBound(a, old);
  if (a[i] !== old) {
    sortedInsert(a, x);
    return;
  }
  // Where sortedInsert would put x once a[i] is gone: the same index when it is at or before i (the
  // values before i are unchanged, and a[i + 1] >= a[i] >= x), one less after it.
  const j = lowerBound(a, x);
  if (j <= i) {
    for (let t = i; t > j; t--) a[t] = a[t - 1]!;
    a[j] = x;
  } else {
    for (let t = i; t < j - 1; t++) a[t] = a[t + 1]!;
    a[j - 1] = x;
  }
}

export function medianOfSorted(a: readonly number[]): number {
  const mid = a.length >> 1;
  return a.length % 2 === 1 ? a[mid]! : (a[mid - 1]! + a[mid]!) / 2;
}

/**
 * Median of |a[i] - m| for ascending `a`, without sorting: the deviations left of m (m - a[i], growing
 * leftwards) and right of m (a[i] - m, growing rightwards) are two ascending sequences, and the middle
 * order statistics of two ascending sequences are found by a binary search over how many of them come
 * from the left one: O(log n) instead of the merge walk's O(n) (issue 14, branch `rules`: the walk was
 * 7 % of the rules' CPU with spike's 30-value window). The same values as the walk (ring.test.ts), up to
 * the sign of a zero deviation (spike floors the scale above 0, so it makes no difference there).
 */
export function madOfSorted(a: readonly number[], m: number): number {
  const n = a.length;
  if (n === 0) return Number.POSITIVE_INFINITY; // as the merge walk gave
  const p = lowerBound(a, m); // left deviations: L[j] = m - a[p - 1 - j], j < p
  const q = n - p; // right deviations: R[j] = a[p + j] - m, j < q
  const k = (n - 1) >> 1; // index of the (lower) middle deviation
  // The k + 1 smallest deviations are the first i of L and the first k + 1 - i of R for the smallest i
  // with L[i] >= R[k - i] (L grows with i while R[k - i] shrinks, so the test turns true once).
  let lo = Math.max(0, k + 1 - q);
  let hi = Math.min(k + 1, p);
  while (lo < hi) {
    const i = (lo + hi) >> 1;
    if (m - a[p - 1 - i]! < a[p + k - i]! - m) lo = i + 1;
    else hi = i;
  }
  const fromR = k + 1 - lo;
  const lastL = lo > 0 ? m - a[p - lo]! : Number.NEGATIVE_INFINITY;
  const lastR = fromR > 0 ? a[p + fromR - 1]! - m : Number.NEGATIVE_INFINITY;
  const lower = lastL > lastR ? lastL : lastR;
  if (n % 2 === 1) return lower;
  const nextL = lo < p ? m - a[p - 1 - lo]! : Number.POSITIVE_INFINITY;
  const nextR = fromR < q ? a[p + fromR]! - m : Number.POSITIVE_INFINITY;
  return (lower + (nextL <= nextR ? nextL : nextR)) / 2;
}

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n-1); 0 for fewer than two values. */
export function stddev(xs: readonly number[], m = mean(xs)): number {
  if (xs.length < 2) return 0;
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

export function median(xs: readonly number[]): number {
  const a = [...xs].sort((p, q) => p - q);
  const mid = a.length >> 1;
  return a.length % 2 === 1 ? a[mid]! : (a[mid - 1]! + a[mid]!) / 2;
}
