// One raw writer (raw-writers.ts) on a worker thread: builds its records, waits for 'go' (so both
// threads start together), writes, and posts the timing back.
import { parentPort } from 'node:worker_threads';
import { threadData } from '../shared/ts-worker.ts';
import { rawInflux, rawKafka, records } from './raw-writers.ts';

const { kind, target, total } = threadData<{ kind: 'kafka' | 'influx'; target: string; total: number }>();
const recs = records(total);
parentPort!.postMessage({ t: 'ready' });
parentPort!.once('message', async () => {
  const r = kind === 'kafka' ? await rawKafka(target, recs) : await rawInflux(target, recs);
  parentPort!.postMessage({ t: 'done', r });
});
