// number format (SPEC.md 2): the payload is one number in plain decimal notation (surrounding
// whitespace allowed); device and metric come from the topic (`topicPattern`) or the source's `device`.
// Always arrival time: a bare number carries no timestamp.
import type { Reading } from '../../shared/model.ts';
import { checkName, fail, parseNumberText, toText } from './common.ts';
import type { DecodeContext, Decoder, DecoderDescriptor } from './decoder.ts';

/** A number needs no more than this; anything longer is not a number frame. */
const MAX_NUMBER_FRAME = 256;

export class NumberDecoder implements Decoder {
  readonly format = 'number' as const;

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, MAX_NUMBER_FRAME);
    if (text.trim() === '') fail('empty', 'empty frame');
    const device = checkName(ctx.device, 'device');
    const metric = checkName(ctx.metric, 'metric');
    return [{ device, metric, value: parseNumberText(text), ts: ctx.arrivalTs, arrivalTime: true }];
  }
}

export const numberFormat: DecoderDescriptor = {
  type: 'number',
  summary: 'the payload is one number; device and metric come from the topic',
  capabilities: { needsTopicMetric: true },
  create: (_o) => new NumberDecoder(),
};
