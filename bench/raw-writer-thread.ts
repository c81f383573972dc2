// One raw writer (raw-writers.ts) on a worker thread: builds its records, waits for 'go' (so both
// threads start together), writes, and posts the timing back.
import { parentPort } from 'node:worker_threads';
import { threadData } from '../shared/ts-worker.ts';
import { type RawKafkaClient, rawInflux, rawKafka, records } from './raw-writers.ts';

const { kind, target, total, client } = threadData<{
  kind: 'kafka' | 'influx';
  target: string;
  total: number;
  client: RawKafkaClient;
}>();
const recs = records(total);
parentPort!.postMessage({ t: 'ready' });
parentPort!.once('message', async () => {
  const r = kind === 'kafka' ? await rawKafka(target, recs, client) : await rawInflux(target, recs);
  parentPort!.postMessage({ t: 'done', r });
});
