// Entry point of a sink thread (sink-thread.ts). Worker threads do not inherit the main thread's
// module hooks when those were registered through tsx's API (bin/edgeflow-collector.js), so this thread
// registers tsx itself before loading the TypeScript sources.
import { register } from 'tsx/esm/api';

register();
await import('./sink-thread-worker.ts');
