// Arrays of numbers sized for what they will hold (issue 14): the window accumulators' held p50/p95 values
// (agent/windows/aggregates.ts) and the zscore/spike sliding windows (agent/rules/stats.ts). Grown by
// push, V8 gives an array room for half as much again plus 16, which at 10,000 keys was most of their
// memory.

/**
 * `values` from index `from` on, copied into an array with room for `room` values: `new Array(room)`
 * makes the backing store that size, and cutting `length` back to the values keeps it (V8 trims only
 * below half), so pushes fill it without a reallocation.
 */
export function withRoom(values: readonly number[], room: number, from = 0): number[] {
  const out = new Array<number>(room);
  for (let i = from; i < values.length; i++) out[i - from] = values[i]!;
  out.length = values.length - from;
  return out;
}
