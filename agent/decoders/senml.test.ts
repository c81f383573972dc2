import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SenmlDecoder } from './senml.ts';
import { ARRIVAL, assertReason } from './test-helpers.ts';

const d = new SenmlDecoder();
const ctx = { arrivalTs: ARRIVAL };

describe('senml decoder', () => {
  it('resolves base name, base time and relative t (RFC 8428 4.6)', () => {
    const pack = [
      { bn: 'urn:dev:mac:0024befffe804ff1:', bt: 1700000000, bu: 'Cel', n: 'temperature', v: 21.5 },
      { n: 'humidity', u: '%RH', v: 40.2, t: 1.5 },
    ];
    assert.deepEqual(d.decode(JSON.stringify(pack), ctx), [
      { device: 'urn:dev:mac:0024befffe804ff1', metric: 'temperature', value: 21.5, ts: 1700000000000 },
      { device: 'urn:dev:mac:0024befffe804ff1', metric: 'humidity', value: 40.2, ts: 1700000001500 },
    ]);
  });

  it('applies bv and treats times below 2^28 as relative to arrival', () => {
    const rs = d.decode('[{"bn":"s1/","bv":100,"n":"level","v":-1,"t":-10}]', ctx);
    assert.deepEqual(rs, [{ device: 's1', metric: 'level', value: 99, ts: ARRIVAL - 10_000 }]);
  });

  it('stamps arrival time when the pack has no time at all', () => {
    assert.deepEqual(d.decode('[{"n":"temp","v":1}]', { ...ctx, device: 'press-7' }), [
      { device: 'press-7', metric: 'temp', value: 1, ts: ARRIVAL, arrivalTime: true },
    ]);
  });

  it('splits a full name at its last separator; empty name takes topic fields', () => {
    assert.deepEqual(
      d
        .decode('[{"n":"urn:dev:ow:10e2073a01080063:temp","v":2,"t":1700000000}]', ctx)
        .map((r) => [r.device, r.metric]),
      [['urn:dev:ow:10e2073a01080063', 'temp']],
    );
    assert.deepEqual(
      d.decode('[{"v":3}]', { ...ctx, device: 'd', metric: 'm' }).map((r) => [r.device, r.metric]),
      [['d', 'm']],
    );
  });

  it('skips vs/vb/vd/s records, keeps numeric ones', () => {
    const rs = d.decode(
      '[{"bn":"s1:","n":"state","vs":"on"},{"n":"ok","vb":true},{"n":"t","v":5,"t":1700000000}]',
      ctx,
    );
    assert.deepEqual(rs, [{ device: 's1', metric: 't', value: 5, ts: 1700000000000 }]);
  });

  it('rejects bad packs with a reason', () => {
    assertReason(() => d.decode('[{"bn":"s1:","n":"state","vs":"on"}]', ctx), 'not_a_number');
    assertReason(() => d.decode('[{"bn":"s1:","bt":1700000000}]', ctx), 'no_value');
    assertReason(() => d.decode('[]', ctx), 'syntax');
    assertReason(() => d.decode('[1]', ctx), 'syntax');
    assertReason(() => d.decode('[{"n":5,"v":1}]', ctx), 'syntax');
    assertReason(() => d.decode('[{"n":"s:m","v":"1"}]', ctx), 'not_a_number');
    assertReason(() => d.decode('[{"n":"m","v":1}]', ctx), 'no_device');
    assertReason(() => d.decode('[{"n":"s:m","v":1,"t":1700000000000}]', ctx), 'bad_timestamp');
    assertReason(() => d.decode('[{"n":"s:m","v":1e308,"bv":1e308}]', ctx), 'not_a_number');
    assertReason(() => d.decode('[{"n":"s:m","v":1', ctx), 'syntax');
  });
});
