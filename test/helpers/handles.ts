// What keeps a process alive (sockets, timers, fds), counted by type: conformance suites take a count
// before an implementation starts and check that stop() gave every one back.

export function handles(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of process.getActiveResourcesInfo()) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
}

/** The types with more open now than in `base`, as `Type +n`. */
export function moreThan(now: Map<string, number>, base: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [t, n] of now) if (n > (base.get(t) ?? 0)) extra.push(`${t} +${n - (base.get(t) ?? 0)}`);
  return extra;
}
