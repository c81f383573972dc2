// The decoder kinds (a source's `format:`), one line each. Adding a format: its file (a Decoder and a
// DecoderDescriptor) and one line here; the sources' `format` keys, check-config's messages and
// docs/agent-config.md take the list from this registry.
import { oneOf, Registry } from '../../shared/registry.ts';
import { csvFormat } from './csv.ts';
import type { Decoder, DecoderDescriptor, DecoderOptions } from './decoder.ts';
import { jsonFormat } from './json.ts';
import { kvFormat } from './kv.ts';
import { numberFormat } from './number.ts';
import { senmlFormat } from './senml.ts';

export const decoders = new Registry<DecoderDescriptor>('format', [
  jsonFormat,
  csvFormat,
  kvFormat,
  senmlFormat,
  numberFormat,
]);

export function createDecoder(format: string, opts: DecoderOptions = {}): Decoder {
  return decoders.get(format).create(opts);
}

/**
 * A source's `format` key: any registered decoder (checked when the config is parsed, so a decoder
 * registered after this schema was built is accepted too). `withTopics: false` for sources that have no
 * topic to take a metric from (serial): formats that need one are refused there.
 */
export function formatSchema(opts: { withTopics: boolean; default: string }) {
  return oneOf(decoders, (d) => opts.withTopics || !d.capabilities.needsTopicMetric).default(opts.default);
}
