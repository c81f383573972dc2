import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvDecoder } from './kv.ts';
import { ARRIVAL, assertReason } from './test-helpers.ts';

const d = new KvDecoder();
const ctx = { arrivalTs: ARRIVAL, device: 'press-7' };

describe('kv decoder', () => {
  it('decodes pairs with ts', () => {
    assert.deepEqual(d.decode('temperature=21.5 humidity=40.2 ts=1700000000000', ctx), [
      { device: 'press-7', metric: 'temperature', value: 21.5, ts: 1700000000000 },
      { device: 'press-7', metric: 'humidity', value: 40.2, ts: 1700000000000 },
    ]);
  });
  it('uses arrival time without ts; device= overrides; commas tolerated', () => {
    assert.deepEqual(d.decode('device=s9, temperature=1\t', ctx), [
      { device: 's9', metric: 'temperature', value: 1, ts: ARRIVAL, arrivalTime: true },
    ]);
  });
  it('rejects bad frames with a reason', () => {
    assertReason(() => d.decode('temperature 21', ctx), 'syntax');
    assertReason(() => d.decode('=21', ctx), 'syntax');
    assertReason(() => d.decode('t=1 t=2', ctx), 'syntax');
    assertReason(() => d.decode('t=abc', ctx), 'not_a_number');
    assertReason(() => d.decode('t=', ctx), 'no_value');
    assertReason(() => d.decode('ts=1700000000000', ctx), 'no_value');
    assertReason(() => d.decode('t=1', { arrivalTs: ARRIVAL }), 'no_device');
    assertReason(() => d.decode('t=1 ts=x', ctx), 'bad_timestamp');
  });
});
