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
 * Median of |a[i] - m| for ascending `a`, in O(n) without sorting: the deviations left of m and
 * right of m are each already ordered, so walking both like a merge reaches the middle ones.
 */
export function madOfSorted(a: readonly number[], m: number): number {
  const n = a.length;
  let l = lowerBound(a, m) - 1;
  let r = l + 1;
  // The merge walk written inline, no closure per call (issue 14): step i takes the smaller of the next
  // deviation on the left and on the right; the (lower) middle one is step k.
  const k = (n - 1) >> 1; // index of the (lower) middle deviation
  const steps = n % 2 === 1 ? k + 1 : k + 2;
  let lower = 0;
  let d = 0;
  for (let i = 0; i < steps; i++) {
    const dl = l >= 0 ? m - a[l]! : Number.POSITIVE_INFINITY;
    const dr = r < n ? a[r]! - m : Number.POSITIVE_INFINITY;
    if (dl <= dr) {
      l--;
      d = dl;
    } else {
      r++;
      d = dr;
    }
    if (i === k) lower = d;
  }
  return n % 2 === 1 ? lower : (lower + d) / 2;
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
