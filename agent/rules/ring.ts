// A fixed-capacity ring of numbers kept as plain JSON (checkpointed as is).
export interface Ring {
  buf: number[];
  next: number;
}

export function ringInit(): Ring {
  return { buf: [], next: 0 };
}

export function ringPush(r: Ring, cap: number, x: number): void {
  if (r.buf.length < cap) {
    r.buf.push(x);
    r.next = r.buf.length % cap;
  } else {
    r.buf[r.next] = x;
    r.next = (r.next + 1) % cap;
  }
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
