// Starts a TypeScript module on a worker thread (through ts-worker-boot.mjs, which registers tsx there).
// Inside a single executable (the collector's, scripts/build-binaries.mjs) there are no source files:
// the build bundles each worker entry into a SEA asset named by workerAssetName(), run with `eval`.
import { basename } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { Worker, type WorkerOptions, workerData } from 'node:worker_threads';

const BOOT = new URL('./ts-worker-boot.mjs', import.meta.url);

/** SEA asset holding the bundled worker entry `entry` (e.g. worker/sink-thread-worker.cjs). */
export function workerAssetName(entry: URL | string): string {
  return `worker/${basename(typeof entry === 'string' ? entry : entry.pathname).replace(/\.ts$/, '.cjs')}`;
}

/** A worker running `entry` (a .ts module URL); the module reads its data with `threadData()`. */
export function startTsWorker(
  entry: URL,
  data: unknown,
  opts: Pick<WorkerOptions, 'name' | 'resourceLimits'> = {},
): Worker {
  // Of the main thread's flags only --cpu-prof* (a profile per thread, bench/collector.ts) carry over;
  // --import tsx would not work here (see the boot file).
  const execArgv = process.execArgv.filter((a) => a.startsWith('--cpu-prof'));
  const init = { workerData: { entry: entry.href, data }, execArgv, ...opts };
  if (isSea()) return new Worker(getAsset(workerAssetName(entry), 'utf8'), { ...init, eval: true });
  return new Worker(BOOT, init);
}

/** Inside such a worker: the `data` it was started with. */
export function threadData<T>(): T {
  return (workerData as { data: T }).data;
}
