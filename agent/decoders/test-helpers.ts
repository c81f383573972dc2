// Shared assertions for decoder tests (not a test file itself).
import assert from 'node:assert/strict';
import type { Reading } from '../../shared/model.ts';
import { MAX_NAME_LENGTH } from './common.ts';
import { FrameError } from './decoder.ts';

export const ARRIVAL = Date.UTC(2024, 0, 1, 12);

/** Asserts `fn` throws a FrameError with this reason (tests assert codes, not messages). */
export function assertReason(fn: () => unknown, reason: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FrameError, `expected FrameError, got ${String(e)}`);
    assert.equal(e.code, 'FRAME_INVALID');
    assert.equal(e.reason, reason);
    return true;
  });
}

/** Invariants every decoded reading satisfies, whatever the input. */
export function assertWellFormed(rs: Reading[]): void {
  assert.ok(rs.length > 0);
  for (const r of rs) {
    assert.ok(Number.isFinite(r.value));
    assert.ok(Number.isInteger(r.ts));
    assert.ok(r.device.length > 0 && r.device.length <= MAX_NAME_LENGTH);
    assert.ok(r.metric.length > 0 && r.metric.length <= MAX_NAME_LENGTH);
  }
}
