import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { plainDecimal } from './common.ts';
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
  it('reads plain decimals in place as Number() does, and leaves the rest to the general path (property)', () => {
    // Issue 14: plainDecimal answers only for text the general path's pattern accepts as it is.
    const general = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
    const text = fc.oneof(
      fc.string(),
      fc.stringMatching(/^[+-]?\d{0,18}\.?\d{0,18}$/),
      fc.double().map(String),
      fc.integer().map(String),
      fc.constantFrom(
        '0',
        '-0',
        '+0',
        '.5',
        '5.',
        '.',
        '-',
        '+',
        '007',
        '0.1',
        '1e5',
        ' 1',
        '1 ',
        '0x10',
        '',
      ),
    );
    fc.assert(
      fc.property(text, (s) => {
        const v = plainDecimal(s);
        if (Number.isNaN(v)) return;
        assert.ok(general.test(s), s);
        assert.ok(Object.is(v, Number(s)), `${s}: ${v} vs ${Number(s)}`);
      }),
      { numRuns: 5000 },
    );
    for (const s of ['21.5', '-3', '+0.25', '7.', '.5', '-0', '123456789012345'])
      assert.ok(Object.is(plainDecimal(s), Number(s)), s);
    for (const s of ['1e5', ' 1', '1 ', '.', '', '-', '1234567890123456', '0x1', '1,5'])
      assert.ok(Number.isNaN(plainDecimal(s)), s);
  });

  it('validates a topic name that changes after one was remembered', () => {
    const dec = new NumberDecoder();
    assert.equal(dec.decode('1', ctx)[0]!.device, 's1');
    assertReason(
      () => dec.decode('1', { arrivalTs: ARRIVAL, device: '', metric: 'temperature' }),
      'no_device',
    );
    assertReason(() => dec.decode('1', { arrivalTs: ARRIVAL, device: 's1', metric: 'a\nb' }), 'bad_name');
    assertReason(() => dec.decode('1', { arrivalTs: ARRIVAL, device: 's1' }), 'no_metric');
    assert.deepEqual(dec.decode('2', ctx)[0], {
      device: 's1',
      metric: 'temperature',
      value: 2,
      ts: ARRIVAL,
      arrivalTime: true,
    });
    assertReason(() => dec.decode(' ', ctx), 'empty');
  });
});
