// The sinks a collector config asks for, built by name through their descriptors (registry.ts): on the
// main thread (collector.ts) or inside a sink thread (sink-thread-worker.ts), which gets the config and
// the name, not the object. The sink's module (and client library) is imported here, on first use.
import type { Logger } from '../../shared/log.ts';
import type { CollectorConfig } from '../config.ts';
import { type SinkName, sinks } from './registry.ts';
import type { Sink } from './sink.ts';

export type { SinkName } from './registry.ts';

export function configuredSinks(config: CollectorConfig): SinkName[] {
  return sinks.names().filter((n): n is SinkName => config[n as SinkName] !== undefined);
}

export async function buildSink(name: SinkName, config: CollectorConfig, log: Logger): Promise<Sink> {
  const cfg = config[name];
  if (cfg === undefined) throw new Error(`sink ${name} is not configured`);
  return sinks.get(name).create(cfg, log);
}
