// V8 flags the single executable sets once /healthz answers, instead of in the SEA blob's execArgv
// (scripts/build-binaries.mjs) (issue 14, BENCHMARKS.md section 14, "branch start").
//
// Why not at exec: a V8 flag that enters V8's flag hash makes V8 reject the code cache Node embeds for
// its own JavaScript modules, so every built-in module the agent loads at start (net, http, crypto,
// streams, zlib, child_process... ~60 of them) is compiled from source. `--heap-growing-percent=25` is
// such a flag (the heap size flags of the execArgv are not): measured on the pinned Node 24, requiring
// 18 built-ins took 13-16 ms without it and 31-47 ms with it, and the agent's start CPU until /healthz
// was 175 vs 150 ms (main thread 160-170 vs 130 ms). V8 reads the flag at each major GC (heap-controller.cc,
// GrowingFactor), and the agent runs none before /healthz, so setting it here changes no GC: the old
// generation still grows to 1.25x the live heap between major GCs from the first one on.
// What loads built-ins after this point pays as it did with the flag in the execArgv: a built-in module
// first required later (https on the first download, say), and a worker thread's start (the hang
// watchdog of a fleet or update trial: ~40 -> ~72 ms of CPU, measured in bare Node).

/**
 * --heap-growing-percent=25: the old generation may grow 1.25x the live heap between major GCs instead
 * of V8's ~1.6x. Cheap once a checkpoint stopped allocating ~100 MiB a second at 10k keys (issue 14,
 * BENCHMARKS.md section 14 "10k keys"): 10k keys 183-198 -> 163-173 MiB, CPU per reading within noise;
 * 15 gained nothing more (what stays is the heap's fragmentation, not the limit).
 */
export const AFTER_START_V8_FLAGS: readonly string[] = ['--heap-growing-percent=25'];

type GetBuiltin = (id: string) => unknown;

/**
 * Sets AFTER_START_V8_FLAGS when this process is the single executable (as its execArgv did before);
 * a `node` or tsx run (tests, development) keeps V8's defaults. Returns the flags it set.
 */
export function setAfterStartV8Flags(
  getBuiltin: GetBuiltin | undefined = (process as { getBuiltinModule?: GetBuiltin }).getBuiltinModule?.bind(
    process,
  ),
): readonly string[] {
  // getBuiltinModule instead of `import 'node:sea'`: Node 20.11 (dev minimum) has no node:sea.
  const sea = getBuiltin?.('node:sea') as { isSea?: () => boolean } | undefined;
  if (!sea?.isSea?.()) return [];
  const v8 = getBuiltin?.('node:v8') as { setFlagsFromString(flags: string): void };
  for (const flag of AFTER_START_V8_FLAGS) v8.setFlagsFromString(flag);
  return AFTER_START_V8_FLAGS;
}
