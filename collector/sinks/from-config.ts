// The sinks a collector config asks for, built by name: on the main thread (collector.ts) or inside a
// sink thread (sink-thread-worker.ts), which gets the config and the name, not the object.
import type { Logger } from '../../shared/log.ts';
import type { CollectorConfig } from '../config.ts';
import { InfluxSink } from './influxdb.ts';
import { KafkaSink } from './kafka.ts';
import type { Sink } from './sink.ts';

export type SinkName = 'kafka' | 'influx';

export function configuredSinks(config: CollectorConfig): SinkName[] {
  const names: SinkName[] = [];
  if (config.kafka) names.push('kafka');
  if (config.influx) names.push('influx');
  return names;
}

export function buildSink(name: SinkName, config: CollectorConfig, log: Logger): Sink {
  if (name === 'kafka' && config.kafka) return new KafkaSink(config.kafka, log);
  if (name === 'influx' && config.influx) return new InfluxSink(config.influx, log);
  throw new Error(`sink ${name} is not configured`);
}
