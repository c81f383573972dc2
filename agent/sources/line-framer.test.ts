import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LineFramer } from './line-framer.ts';

function frame(chunks: (string | Buffer)[], max = 10) {
  const lines: string[] = [];
  let tooLong = 0;
  const f = new LineFramer(
    max,
    (l) => lines.push(l.toString('latin1')),
    () => tooLong++,
  );
  for (const c of chunks) f.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1'));
  return { lines, tooLong };
}

describe('LineFramer', () => {
  it('splits lines across chunks, strips \\r, skips blank lines', () => {
    assert.deepEqual(frame(['ab', 'c\r\nde\n', '\n', ' \r\n', 'f']), { lines: ['abc', 'de'], tooLong: 0 });
  });
  it('accepts a line of exactly maxFrameLength (the \\r not counted)', () => {
    assert.deepEqual(frame(['0123456789\r\n']), { lines: ['0123456789'], tooLong: 0 });
  });
  it('drops an overlong line whole, reports it once, and resumes at the next line', () => {
    assert.deepEqual(frame(['0123456', '789A', 'BCDEFGH', 'IJ\nok\n']), { lines: ['ok'], tooLong: 1 });
    assert.deepEqual(frame(['01234567890\nok\n0123456789012\n']), { lines: ['ok'], tooLong: 2 });
  });
  it('reset() drops a partial line', () => {
    const lines: string[] = [];
    const f = new LineFramer(
      10,
      (l) => lines.push(l.toString()),
      () => {},
    );
    f.push(Buffer.from('par'));
    f.reset();
    f.push(Buffer.from('tial\nx\n'));
    assert.deepEqual(lines, ['tial', 'x']);
  });
  it('property: however the stream is chunked, the lines are the same', () => {
    const line = fc.string({ unit: fc.constantFrom('a', 'b', '\r', ' '), maxLength: 14 });
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), fc.array(fc.nat(30), { maxLength: 10 }), (ls, cuts) => {
        const text = ls.map((l) => `${l}\n`).join('');
        const whole = frame([text]);
        const pos = [...new Set(cuts.map((c) => Math.min(c, text.length)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let prev = 0;
        for (const p of pos) {
          chunks.push(text.slice(prev, p));
          prev = p;
        }
        chunks.push(text.slice(prev));
        assert.deepEqual(frame(chunks), whole);
        const expected = ls
          .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
          .filter((l) => l.trim() !== '' && l.replace(/\r$/, '').length <= 10);
        assert.deepEqual(
          whole.lines,
          expected.filter((l) => l.length <= 10),
        );
      }),
    );
  });
});
