import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NumberDecoder } from './number.ts';
import { ARRIVAL, assertReason } from './test-helpers.ts';

const d = new NumberDecoder();
const ctx = { arrivalTs: ARRIVAL, device: 's1', metric: 'temperature' };

describe('number decoder', () => {
  it('decodes one number with topic fields at arrival time', () => {
    assert.deepEqual(d.decode(Buffer.from(' 21.5\n'), ctx), [
      { device: 's1', metric: 'temperature', value: 21.5, ts: ARRIVAL, arrivalTime: true },
    ]);
  });
  it('rejects bad frames with a reason', () => {
    assertReason(() => d.decode('warm', ctx), 'not_a_number');
    assertReason(() => d.decode('NaN', ctx), 'not_a_number');
    assertReason(() => d.decode('-Infinity', ctx), 'not_a_number');
    assertReason(() => d.decode('', ctx), 'empty');
    assertReason(() => d.decode('1', { arrivalTs: ARRIVAL, metric: 'm' }), 'no_device');
    assertReason(() => d.decode('1', { arrivalTs: ARRIVAL, device: 'd' }), 'no_metric');
    assertReason(() => d.decode('1'.repeat(300), ctx), 'too_long');
  });
});
