// Property: whatever bytes arrive, decode() returns well-formed readings or throws a FrameError with a
// known reason, never anything else (a TypeError here would stop a source).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FRAME_REASONS } from './common.ts';
import { FrameError } from './decoder.ts';
import { createDecoder, decoders } from './index.ts';
import { ARRIVAL, assertWellFormed } from './test-helpers.ts';

const reasons = new Set<string>(FRAME_REASONS);

function check(format: string, payload: Buffer | string, device?: string, metric?: string) {
  const d = createDecoder(format);
  try {
    assertWellFormed(d.decode(payload, { arrivalTs: ARRIVAL, device, metric }));
  } catch (e) {
    if (!(e instanceof FrameError)) throw e;
    assert.ok(reasons.has(e.reason), `unknown reason ${e.reason}`);
  }
}

const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
const nameish = fc.oneof(fc.string(), fc.constantFrom('s1', 'temperature', 'urn:dev:x:', '__proto__', ''));
const scalar = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(1700000000, 1700000000000, '2023-11-14T22:13:20Z'),
);
const jsonFrame = fc
  .record(
    { device: nameish, metric: nameish, value: scalar, ts: scalar, temperature: scalar },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));
const senmlRecord = fc.record(
  {
    bn: nameish,
    bt: scalar,
    bv: scalar,
    bu: scalar,
    n: nameish,
    v: scalar,
    t: scalar,
    vs: scalar,
    vb: scalar,
    s: scalar,
  },
  { requiredKeys: [] },
);
const senmlFrame = fc.array(senmlRecord, { maxLength: 5 }).map((a) => JSON.stringify(a));
const textFrame = fc
  .array(
    fc.oneof(
      fc.string(),
      fc.constantFrom('s1', 'temperature', '21.5', 'ts=', '=', ',', ' ', '1e400', 'NaN', 'x=1'),
    ),
    { maxLength: 8 },
  )
  .map((a) => a.join(''));
const anyPayload = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
  fc.string(),
  fc.string({ unit: 'binary' }),
  json,
  jsonFrame,
  senmlFrame,
  textFrame,
);

describe('decoders never throw anything but FrameError', () => {
  for (const format of decoders.names()) {
    it(format, () => {
      fc.assert(
        fc.property(
          anyPayload,
          fc.option(nameish, { nil: undefined }),
          fc.option(nameish, { nil: undefined }),
          (p, dev, met) => check(format, p, dev, met),
        ),
        { numRuns: 2000 },
      );
    });
  }
  it('deeply nested JSON is a FrameError, not a stack overflow', () => {
    for (const format of ['json', 'senml'] as const)
      check(format, `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  });
});
