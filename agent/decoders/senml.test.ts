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
      {
        device: 'urn:dev:mac:0024befffe804ff1',
        metric: 'temperature',
        value: 21.5,
        ts: 1700000000000,
        unit: 'Cel',
      },
      {
        device: 'urn:dev:mac:0024befffe804ff1',
        metric: 'humidity',
        value: 40.2,
        ts: 1700000001500,
        unit: '%RH',
      },
    ]);
  });

  it("decodes RFC 8428 5.1.3's example (bver 5, 2010 times, units), one reading per record", () => {
    const pack = [
      {
        bn: 'urn:dev:ow:10e2073a011000:',
        bt: 1.276020076e9,
        bu: 'A',
        bver: 5,
        n: 'voltage',
        u: 'V',
        v: 120.1,
      },
      { n: 'current', t: -5, v: 1.2 },
      { n: 'current', t: -4, v: 1.3 },
      { n: 'current', t: -3, v: 1.4 },
      { n: 'current', t: -2, v: 1.5 },
      { n: 'current', t: -1, v: 1.6 },
      { n: 'current', v: 1.7 },
    ];
    const rs = d.decode(JSON.stringify(pack), ctx);
    assert.equal(rs.length, 7);
    assert.deepEqual(rs[0], {
      device: 'urn:dev:ow:10e2073a011000',
      metric: 'voltage',
      value: 120.1,
      ts: 1276020076000,
      unit: 'V',
    });
    assert.deepEqual(rs[1], {
      device: 'urn:dev:ow:10e2073a011000',
      metric: 'current',
      value: 1.2,
      ts: 1276020071000,
      unit: 'A',
    });
    assert.equal(new Date(rs[6]!.ts).toISOString(), '2010-06-08T18:01:16.000Z');
  });

  it('refuses a pack with bver above 10 or a must-understand field (RFC 8428 4.4), whole', () => {
    assertReason(() => d.decode('[{"bn":"s1:","bver":11,"n":"t","v":1}]', ctx), 'unsupported');
    assertReason(
      () => d.decode('[{"bn":"s1:","n":"t","v":1},{"n":"u","v":2,"crit_":1}]', ctx),
      'unsupported',
    );
    assertReason(() => d.decode('[{"bn":"s1:","bver":"10","n":"t","v":1}]', ctx), 'syntax');
    assert.equal(d.decode('[{"bn":"s1:","bver":10,"n":"t","v":1}]', ctx).length, 1);
  });

  it('a pack without names takes device and metric from the topic (RFC 8428 5.1.1 style single value)', () => {
    const rs = d.decode('[{"u":"Cel","v":23.1}]', { ...ctx, device: 'probe-3', metric: 'temperature' });
    assert.deepEqual(rs, [
      { device: 'probe-3', metric: 'temperature', value: 23.1, ts: ARRIVAL, arrivalTime: true, unit: 'Cel' },
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
