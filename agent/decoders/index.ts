// The decoders' public surface: createDecoder(format) from the registry (registry.ts). Decoders are
// stateless and pure; one instance may serve many sources.
export { FRAME_REASONS, type FrameReason } from './common.ts';
export {
  type DecodeContext,
  type Decoder,
  type DecoderDescriptor,
  type DecoderOptions,
  FrameError,
  type FrameFormat,
} from './decoder.ts';
export { createDecoder, decoders } from './registry.ts';
