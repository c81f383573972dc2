// Entry point of every worker thread we start (shared/ts-worker.ts). Worker threads do not inherit the
// main thread's module hooks (neither tsx's register() API, used by bin/*.js, nor `--import tsx` on
// Node 20), so this thread registers tsx itself, then loads the TypeScript module it was started for.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
