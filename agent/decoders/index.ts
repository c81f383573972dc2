// createDecoder(format): the decoder for a source's `format` (SPEC.md 2). Decoders are stateless and
// pure; one instance may serve many sources.
import { CsvDecoder } from './csv.ts';
import type { Decoder, FrameFormat } from './decoder.ts';
import { JsonDecoder } from './json.ts';
import { KvDecoder } from './kv.ts';
import { NumberDecoder } from './number.ts';
import { SenmlDecoder } from './senml.ts';

export { FRAME_REASONS, type FrameReason } from './common.ts';
export { type DecodeContext, type Decoder, FrameError, type FrameFormat } from './decoder.ts';

export const FRAME_FORMATS: readonly FrameFormat[] = ['json', 'csv', 'kv', 'senml', 'number'];

export interface DecoderOptions {
  /** Largest frame accepted, bytes; larger is FrameError `too_long`. [1MB] */
  maxFrameBytes?: number;
}

export function createDecoder(format: FrameFormat, opts: DecoderOptions = {}): Decoder {
  const max = opts.maxFrameBytes;
  switch (format) {
    case 'json':
      return new JsonDecoder(max);
    case 'csv':
      return new CsvDecoder(max);
    case 'kv':
      return new KvDecoder(max);
    case 'senml':
      return new SenmlDecoder(max);
    case 'number':
      return new NumberDecoder();
    default:
      throw new RangeError(
        `unknown frame format "${format as string}", expected one of ${FRAME_FORMATS.join(', ')}`,
      );
  }
}
