// The source kinds (`sources[].type`), one line each. Adding a source: `<type>.ts` (the Source),
// `<type>.descriptor.ts` (schema, capabilities, lazy factory) and one line here; the agent config's
// `sources` union, check-config and docs/agent-config.md follow from it.
import type { z } from 'zod';
import { builtFrom, discriminatedUnionOf, Registry } from '../../shared/registry.ts';
import { decoders } from '../decoders/registry.ts';
import { mqttSource } from './mqtt.descriptor.ts';
import { mqttBrokerSource } from './mqtt-broker.descriptor.ts';
import { serialSource } from './serial.descriptor.ts';
import type { Source, SourceContext, SourceDescriptor } from './source.ts';

const BUILTIN = [serialSource, mqttSource, mqttBrokerSource] as const;

export const sources = new Registry<SourceDescriptor>('source type', BUILTIN);

/** One entry of `sources:` as the runtime gets it (defaults applied). */
export type SourceConfig = z.output<(typeof BUILTIN)[number]['schema']>;
type SourceInput = z.input<(typeof BUILTIN)[number]['schema']>;

/** The `sources[]` entry schema: the union of every registered kind's schema on `type`. */
export const sourceSchema = builtFrom([sources, decoders], () =>
  discriminatedUnionOf<SourceConfig, SourceInput>('type', sources),
);

/** The source for one entry of `sources:`; the kind's module is loaded here, on first use. */
export function createSource(cfg: SourceConfig, agentId: string, ctx: SourceContext): Promise<Source> {
  return sources.get(cfg.type).create(cfg, agentId, ctx);
}
