// Starts a TypeScript module on a worker thread (through ts-worker-boot.mjs, which registers tsx there).
import { Worker, workerData } from 'node:worker_threads';

const BOOT = new URL('./ts-worker-boot.mjs', import.meta.url);

/** A worker running `entry` (a .ts module URL); the module reads its data with `threadData()`. */
export function startTsWorker(entry: URL, data: unknown, opts: { name?: string } = {}): Worker {
  // Of the main thread's flags only --cpu-prof* (a profile per thread, bench/collector.ts) carry over;
  // --import tsx would not work here (see the boot file).
  const execArgv = process.execArgv.filter((a) => a.startsWith('--cpu-prof'));
  return new Worker(BOOT, { workerData: { entry: entry.href, data }, execArgv, ...opts });
}

/** Inside such a worker: the `data` it was started with. */
export function threadData<T>(): T {
  return (workerData as { data: T }).data;
}
