// The sink kinds, one line each. Each is an optional top-level key of the collector config (`kafka:`,
// `influx:`; SPEC.md 2b). Adding a sink: `<name>.ts` (the Sink), `<name>.descriptor.ts` and one line
// here; the collector config, the sink names of the runners and the CLI follow from it.
import type { z } from 'zod';
import { Registry } from '../../shared/registry.ts';
import { influxSink } from './influxdb.descriptor.ts';
import { kafkaSink } from './kafka.descriptor.ts';
import type { SinkDescriptor } from './sink.ts';

const BUILTIN = [kafkaSink, influxSink] as const;

export const sinks = new Registry<SinkDescriptor>('sink', BUILTIN);

export type SinkName = (typeof BUILTIN)[number]['type'];
type SinkShape = { [D in (typeof BUILTIN)[number] as D['type']]: z.ZodOptional<D['schema']> };

/** `{kafka: kafkaSchema.optional(), influx: ...}` for the collector config object. */
export function sinkConfigShape(): SinkShape {
  // The one cast: Object.fromEntries cannot carry the per-key schema types of the tuple.
  return Object.fromEntries(sinks.all().map((d) => [d.type, d.schema.optional()])) as unknown as SinkShape;
}
