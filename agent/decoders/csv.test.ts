import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CsvDecoder } from './csv.ts';
import { ARRIVAL, assertReason } from './test-helpers.ts';

const d = new CsvDecoder();
const ctx = { arrivalTs: ARRIVAL };

describe('csv decoder', () => {
  it('decodes device,metric,value,ts', () => {
    assert.deepEqual(d.decode(Buffer.from('s1,temperature,21.5,1700000000000\r\n'), ctx), [
      { device: 's1', metric: 'temperature', value: 21.5, ts: 1700000000000 },
    ]);
  });
  it('uses arrival time without ts and the source device for an empty field', () => {
    assert.deepEqual(d.decode(' , temperature , -3e2 ', { ...ctx, device: 'press-7' }), [
      { device: 'press-7', metric: 'temperature', value: -300, ts: ARRIVAL, arrivalTime: true },
    ]);
  });
  it('rejects bad frames with a reason', () => {
    assertReason(() => d.decode('s1,temperature', ctx), 'syntax');
    assertReason(() => d.decode('s1,temperature,1,2,3', ctx), 'syntax');
    assertReason(() => d.decode('s1,temperature,NaN', ctx), 'not_a_number');
    assertReason(() => d.decode('s1,temperature,Infinity', ctx), 'not_a_number');
    assertReason(() => d.decode('s1,temperature,0x10', ctx), 'not_a_number');
    assertReason(() => d.decode('s1,temperature,1e400', ctx), 'not_a_number');
    assertReason(() => d.decode('s1,temperature,', ctx), 'no_value');
    assertReason(() => d.decode(',temperature,1', ctx), 'no_device');
    assertReason(() => d.decode('s1,,1', ctx), 'no_metric');
    assertReason(() => d.decode('s1,t,1,soon', ctx), 'bad_timestamp');
    assertReason(() => d.decode('', ctx), 'empty');
  });
});
