import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createDecoder } from '../agent/decoders/index.ts';
import { encode, FORMATS, type FrameContent } from './formats.ts';
import { METRICS, type Metric } from './signals.ts';

const one: FrameContent = { device: 's1', ts: 1700000000000, values: [['temperature', 21.5]] };
const two: FrameContent = {
  device: 's1',
  ts: 1700000000000,
  values: [
    ['temperature', 21.5],
    ['humidity', 40.2],
  ],
};

describe('frame encoders produce SPEC.md section 2 frames', () => {
  it('json, single reading and grouped', () => {
    assert.equal(
      encode('json', one),
      '{"device":"s1","metric":"temperature","value":21.5,"ts":1700000000000}',
    );
    assert.equal(
      encode('json', two),
      '{"device":"s1","ts":1700000000000,"temperature":21.5,"humidity":40.2}',
    );
  });

  it('csv: device,metric,value,ts', () => {
    assert.equal(encode('csv', one), 's1,temperature,21.5,1700000000000');
    assert.throws(() => encode('csv', two), RangeError);
  });

  it('kv: metric=value ... ts=', () => {
    assert.equal(encode('kv', two), 'temperature=21.5 humidity=40.2 ts=1700000000000');
  });

  it('senml: an RFC 8428 pack with bn, bt (seconds), n, u, v', () => {
    assert.deepEqual(JSON.parse(encode('senml', { ...two, ts: 1700000000123 })), [
      { bn: 's1/', bt: 1700000000.123, n: 'temperature', u: 'Cel', v: 21.5 },
      { n: 'humidity', u: '%RH', v: 40.2 },
    ]);
  });

  it('number: the value alone', () => {
    assert.equal(encode('number', one), '21.5');
    assert.throws(() => encode('number', two), RangeError);
  });

  it('every format decodes back to the same readings with the agent decoders', () => {
    const metricsArb = fc.uniqueArray(fc.constantFrom(...METRICS), { minLength: 1, maxLength: 4 });
    const valueArb = fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((v) => Math.round(v * 1000) / 1000);
    fc.assert(
      fc.property(
        fc.constantFrom(...FORMATS),
        metricsArb,
        fc.array(valueArb, { minLength: 4, maxLength: 4 }),
        fc.integer({ min: Date.UTC(2001, 0, 1), max: Date.UTC(2099, 0, 1) }),
        // Device names as the simulator makes them: --device-prefix ([a-zA-Z0-9._-]*) and a number.
        fc.stringMatching(/^[a-zA-Z0-9._-]{0,12}[0-9]{1,5}$/),
        (format, metrics, values, ts, device) => {
          const ms: Metric[] = format === 'csv' || format === 'number' ? metrics.slice(0, 1) : metrics;
          const c: FrameContent = { device, ts, values: ms.map((m, i) => [m, values[i]!] as const) };
          const got = createDecoder(format).decode(encode(format, c), {
            arrivalTs: ts,
            device,
            metric: ms[0]!,
          });
          assert.deepEqual(
            got.map((r) => [r.device, r.metric, r.value, r.ts]),
            c.values.map(([m, v]) => [device, m, Object.is(v, -0) ? 0 : v, ts]),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
