// Inside a sink thread (see sink-thread.ts): the sink built from the config, a SinkRunner over a
// read-only view of the spool, and messages to the main thread for everything that writes.
import { EventEmitter } from 'node:events';
import { parentPort } from 'node:worker_threads';
import { systemClock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { createLogger } from '../../shared/log.ts';
import { threadData } from '../../shared/ts-worker.ts';
import { SpoolReader } from '../spool/spool.ts';
import { buildSink } from './from-config.ts';
import { type RunnerMetrics, type RunnerSpool, SinkRunner } from './runner.ts';
import type { FromSinkThread, MetricOp, SinkThreadInit, ToSinkThread } from './sink-thread.ts';

const port = parentPort!;
const init = threadData<SinkThreadInit>();
const post = (m: FromSinkThread) => port.postMessage(m);

const log = createLogger('edgeflow-collector', init.logLevel).child({ sink: init.sink, thread: true });
const sink = await buildSink(init.sink, init.config, log);
const reader = new SpoolReader(init.spoolPath);
const appended = new EventEmitter();

// The thread's cursor runs ahead of the persisted one by the 'advance' messages in flight.
let cursor = init.cursor;
const spool: RunnerSpool = {
  read: (_sink, limit) => reader.read(cursor, limit),
  advance: (_sink, seq) => {
    if (seq <= cursor) return;
    cursor = seq;
    post({ t: 'advance', seq });
  },
  append: (entries) => post({ t: 'deadletter', entries: [...entries] }),
  depth: () => reader.depth(cursor),
  on: (event, fn) => appended.on(event, fn),
  off: (event, fn) => appended.off(event, fn),
};

// Metric calls are batched per turn of the event loop into one message.
let ops: MetricOp[] = [];
let runner: SinkRunner | null = null;
function flushMetrics(): void {
  const batch = ops;
  ops = [];
  post({
    t: 'metrics',
    ops: batch,
    lastError: runner?.lastError ?? null,
    lastSuccessAt: runner?.lastSuccessAt ?? null,
  });
}
function op(o: MetricOp): void {
  if (ops.length === 0) setImmediate(flushMetrics);
  ops.push(o);
}
const metrics: RunnerMetrics = {
  sinkLatency: { observe: (l, v) => op(['sinkLatency', 'observe', l, v]) },
  deliveryStage: { observe: (l, v) => op(['deliveryStage', 'observe', l, v]) },
  sinkErrors: { inc: (l) => op(['sinkErrors', 'inc', l, 1]) },
  sinkWritten: { inc: (l, n) => op(['sinkWritten', 'inc', l, n]) },
  sinkUp: { set: (l, v) => op(['sinkUp', 'set', l, v]) },
  sinkDropped: { inc: (l) => op(['sinkDropped', 'inc', l, 1]) },
  spoolDepth: { set: (l, v) => op(['spoolDepth', 'set', l, v]) },
  spoolAge: { set: (l, v) => op(['spoolAge', 'set', l, v]) },
};

port.on('message', async (m: ToSinkThread) => {
  if (m.t === 'append') {
    appended.emit('append');
    return;
  }
  if (m.t === 'stop') {
    await runner?.stop();
    await sink.close().catch(() => {});
    reader.close();
    if (ops.length > 0) flushMetrics();
    post({ t: 'stopped' });
    port.close();
  }
});

async function start(): Promise<void> {
  try {
    await sink.start();
  } catch (e) {
    const err = e instanceof EdgeflowError ? e : null;
    post({
      t: 'startFailed',
      message: (e as Error).message,
      code: err?.code ?? 'SINK_UNAVAILABLE',
      retriable: err?.retriable ?? false,
    });
    reader.close();
    port.close();
    return;
  }
  runner = new SinkRunner(sink, spool, metrics, log, systemClock, init.runner);
  runner.start();
  post({ t: 'started' });
}

await start();
