// number format (SPEC.md 2): the payload is one number in plain decimal notation (surrounding
// whitespace allowed); device and metric come from the topic (`topicPattern`) or the source's `device`.
// Always arrival time: a bare number carries no timestamp.
import type { Reading } from '../../shared/model.ts';
import { checkName, fail, parseNumberText, plainDecimal, toText } from './common.ts';
import type { DecodeContext, Decoder, DecoderDescriptor } from './decoder.ts';

/** A number needs no more than this; anything longer is not a number frame. */
const MAX_NUMBER_FRAME = 256;

export class NumberDecoder implements Decoder {
  readonly format = 'number' as const;

  /** The topic's names last validated: the same device and metric arrive over and over (issue 14). */
  private lastDevice: string | null = null;
  private lastMetric: string | null = null;

  decode(payload: Buffer | string, ctx: DecodeContext): Reading[] {
    const text = toText(payload, MAX_NUMBER_FRAME);
    // A plain decimal is not blank: the trim only for the others (issue 14).
    let value = plainDecimal(text);
    if (Number.isNaN(value) && text.trim() === '') fail('empty', 'empty frame');
    let device = ctx.device;
    if (device !== this.lastDevice || device === undefined) {
      device = checkName(device, 'device');
      this.lastDevice = device;
    }
    let metric = ctx.metric;
    if (metric !== this.lastMetric || metric === undefined) {
      metric = checkName(metric, 'metric');
      this.lastMetric = metric;
    }
    if (Number.isNaN(value)) value = parseNumberText(text);
    return [{ device, metric, value, ts: ctx.arrivalTs, arrivalTime: true }];
  }
}

export const numberFormat: DecoderDescriptor = {
  type: 'number',
  summary: 'the payload is one number; device and metric come from the topic',
  capabilities: { needsTopicMetric: true },
  create: (_o) => new NumberDecoder(),
};
