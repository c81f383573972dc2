import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
});
