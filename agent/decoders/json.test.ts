import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameError } from './decoder.ts';
import { JsonDecoder } from './json.ts';
import { ARRIVAL, assertReason } from './test-helpers.ts';

const d = new JsonDecoder();
const ctx = { arrivalTs: ARRIVAL };

describe('json decoder', () => {
  it('decodes the single-reading form with epoch ms', () => {
    const rs = d.decode(
      Buffer.from('{"device":"s1","metric":"temperature","value":21.5,"ts":1700000000000}'),
      ctx,
    );
    assert.deepEqual(rs, [{ device: 's1', metric: 'temperature', value: 21.5, ts: 1700000000000 }]);
  });

  it('decodes the multi-metric form and skips non-numeric fields', () => {
    const rs = d.decode(
      '{"device":"s1","ts":1700000000000,"temperature":21.5,"humidity":40.2,"fw":"1.2","ok":true}',
      ctx,
    );
    assert.deepEqual(rs, [
      { device: 's1', metric: 'temperature', value: 21.5, ts: 1700000000000 },
      { device: 's1', metric: 'humidity', value: 40.2, ts: 1700000000000 },
    ]);
  });

  it('accepts ISO 8601 with a zone, epoch seconds, and numeric strings', () => {
    assert.equal(
      d.decode('{"device":"s","metric":"m","value":1,"ts":"2023-11-14T22:13:20Z"}', ctx)[0]!.ts,
      1700000000000,
    );
    assert.equal(
      d.decode('{"device":"s","metric":"m","value":1,"ts":"2023-11-14T23:13:20.5+01:00"}', ctx)[0]!.ts,
      1700000000500,
    );
    assert.equal(
      d.decode('{"device":"s","metric":"m","value":1,"ts":1700000000}', ctx)[0]!.ts,
      1700000000000,
    );
    assert.equal(
      d.decode('{"device":"s","metric":"m","value":1,"ts":1700000000.25}', ctx)[0]!.ts,
      1700000000250,
    );
    assert.equal(
      d.decode('{"device":"s","metric":"m","value":1,"ts":"1700000000000"}', ctx)[0]!.ts,
      1700000000000,
    );
  });

  it('stamps arrival time when there is no ts', () => {
    const rs = d.decode('{"device":"s1","temperature":21.5}', ctx);
    assert.deepEqual(rs, [
      { device: 's1', metric: 'temperature', value: 21.5, ts: ARRIVAL, arrivalTime: true },
    ]);
  });

  it('falls back to the context device and topic metric', () => {
    const rs = d.decode('{"value":3}', { arrivalTs: ARRIVAL, device: 'press-7', metric: 'vibration' });
    assert.deepEqual(rs, [
      { device: 'press-7', metric: 'vibration', value: 3, ts: ARRIVAL, arrivalTime: true },
    ]);
  });

  it('rejects bad frames with a reason', () => {
    assertReason(() => d.decode('{"device":"s1"', ctx), 'syntax');
    assertReason(() => d.decode('[1,2]', ctx), 'syntax');
    assertReason(() => d.decode('  ', ctx), 'empty');
    assertReason(() => d.decode('{"metric":"m","value":1}', ctx), 'no_device');
    assertReason(() => d.decode('{"device":"","metric":"m","value":1}', ctx), 'no_device');
    assertReason(() => d.decode('{"device":"s","metric":"","value":1}', ctx), 'no_metric');
    assertReason(() => d.decode('{"device":"s","metric":"m"}', ctx), 'no_value');
    assertReason(() => d.decode('{"device":"s","metric":"m","value":"21.5"}', ctx), 'not_a_number');
    assertReason(() => d.decode('{"device":"s","metric":"m","value":1e999}', ctx), 'not_a_number');
    assertReason(() => d.decode('{"device":"s","fw":"1.2"}', ctx), 'no_value');
    assertReason(() => d.decode(`{"device":"${'x'.repeat(300)}","metric":"m","value":1}`, ctx), 'bad_name');
    assertReason(() => d.decode('{"device":"a\\nb","metric":"m","value":1}', ctx), 'bad_name');
    assertReason(() => d.decode('{"device":"s","__proto__":1}', ctx), 'bad_name');
    assertReason(
      () => d.decode('{"device":"s","metric":"m","value":1,"ts":"yesterday"}', ctx),
      'bad_timestamp',
    );
    assertReason(
      () => d.decode('{"device":"s","metric":"m","value":1,"ts":"2023-11-14T22:13:20"}', ctx),
      'bad_timestamp',
    );
    // 12345 s after the epoch is a time (1970): how old is too old is the runtime's limits.minEventTime.
    assert.equal(d.decode('{"device":"s","metric":"m","value":1,"ts":12345}', ctx)[0]!.ts, 12_345_000);
    assertReason(() => d.decode('{"device":"s","metric":"m","value":1,"ts":-1}', ctx), 'bad_timestamp');
    assertReason(() => d.decode(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), ctx), 'encoding');
    // Bytes a fatal TextDecoder refuses are refused (issue 14 validates with buffer.isUtf8): an overlong
    // NUL, a UTF-16 surrogate; a leading BOM is dropped as TextDecoder drops it; a plain Uint8Array decodes.
    assertReason(() => d.decode(Buffer.from([0x22, 0xc0, 0x80, 0x22]), ctx), 'encoding');
    assertReason(() => d.decode(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), ctx), 'encoding');
    const frame = '{"device":"s","metric":"m","value":1.5,"ts":1700000000000}';
    assert.equal(
      d.decode(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(frame)]), ctx)[0]!.value,
      1.5,
    );
    assert.equal(d.decode(new Uint8Array(Buffer.from(frame)) as Buffer, ctx)[0]!.value, 1.5);
    assertReason(() => new JsonDecoder(10).decode('{"device":"s1","temperature":1}', ctx), 'too_long');
  });

  // Issue 14: frames of the firmware's exact shape are read without JSON.parse (decodeCanonical). A
  // leading space sends the same frame down the general path: both must give the same readings or the
  // same reason, whatever the names and number texts.
  describe('the canonical single form read in place', () => {
    const outcome = (dec: JsonDecoder, frame: string) => {
      try {
        return { readings: dec.decode(frame, ctx) };
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
        return { reason: e.reason };
      }
    };
    const same = (dec: JsonDecoder, frame: string) => {
      const fast = outcome(dec, frame);
      const general = outcome(dec, ` ${frame}`);
      assert.deepEqual(fast, general, frame);
      if ('readings' in fast)
        for (const [i, r] of fast.readings!.entries())
          assert.ok(Object.is(r.value, general.readings![i]!.value), `${frame}: -0 kept`);
    };
    const numberText = fc.oneof(
      fc.double().map((v) => JSON.stringify(v)),
      fc.integer().map(String),
      fc.constantFrom(
        '0',
        '-0',
        '-0.0',
        '0.1',
        '0.30000000000000004',
        '1e5',
        '1E+5',
        '2.5e-3',
        '-1.5E2',
        '1e400',
        '123456789012345678',
        '9007199254740993',
        '0.000001',
        '1.000000000000001',
        '16.16',
        '1700000000000',
        '1700000000',
        '1700000000.25',
        '01',
        '1.',
        '.5',
        '-',
        '+1',
        '1e',
        '--1',
        '1.2.3',
        '0x10',
      ),
      fc.stringMatching(/^-?(0|[1-9]\d{0,17})(\.\d{1,17})?([eE][+-]?\d{1,3})?$/),
    );
    const name = fc.oneof(
      fc.string(),
      fc.constantFrom('press-1', 'temperature', '', ' ', '__proto__', 'a\\nb', 'x'.repeat(257), 'é☃', 'a"b'),
    );

    it('gives what the general path gives (property)', () => {
      fc.assert(
        fc.property(name, name, numberText, numberText, (device, metric, value, ts) => {
          // Names as JSON writes them (escapes included) and as a careless firmware might (raw).
          for (const [d, m] of [
            [JSON.stringify(device), JSON.stringify(metric)],
            [`"${device}"`, `"${metric}"`],
          ]) {
            same(new JsonDecoder(), `{"device":${d},"metric":${m},"value":${value},"ts":${ts}}`);
          }
        }),
        { numRuns: 3000 },
      );
    });

    it('reads the topic form {"value":N,"ts":N} as the general path does (property)', () => {
      const ctxName = fc.option(name, { nil: undefined });
      fc.assert(
        fc.property(ctxName, ctxName, numberText, numberText, (device, metric, value, ts) => {
          const c = { device, metric, arrivalTs: ARRIVAL };
          const frame = `{"value":${value},"ts":${ts}}`;
          const run = (f: string) => {
            try {
              return { readings: new JsonDecoder().decode(f, c) };
            } catch (e) {
              if (!(e instanceof FrameError)) throw e;
              return { reason: e.reason };
            }
          };
          const fast = run(frame);
          const general = run(` ${frame}`);
          assert.deepEqual(fast, general, frame);
          if ('readings' in fast) assert.ok(Object.is(fast.readings![0]!.value, general.readings![0]!.value));
        }),
        { numRuns: 3000 },
      );
    });

    it('reuses remembered names only when they are the same text', () => {
      const dec = new JsonDecoder();
      for (const frame of [
        '{"device":"s1","metric":"temperature","value":1,"ts":1700000000000}',
        '{"device":"s12","metric":"temp","value":2,"ts":1700000000000}',
        '{"device":"s","metric":"temperatures","value":3,"ts":1700000000000}',
        '{"device":"","metric":"temperature","value":3,"ts":1700000000000}',
        '{"device":"s1","metric":"","value":3,"ts":1700000000000}',
        '{"device":"s1","metric":"temperature","value":4,"ts":1700000000000} ',
        '{"device":"s1","metric":"temperature","value":5,"ts":1700000000000',
        '{"device":"s1","metric":"temperature","value":6,"ts":1700000000000}}',
        '{"device":"s1","metric":"temperature","value":7,"ts":"1700000000000"}',
        '{"device":"s1","metric":"temperature","value":8,"ts":-1}',
        '{"device":"s1","metric":"temperature","value":1e999,"ts":1700000000000}',
        ...Array.from(
          { length: 12 },
          (_, i) => `{"device":"s${i}","metric":"m${i}","value":${i},"ts":1700000000}`,
        ),
        '{"device":"s1","metric":"temperature","value":9,"ts":1700000000000}',
      ])
        same(dec, frame);
    });
  });
});
