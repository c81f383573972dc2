import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { parseConfigText } from './config-file.ts';
import { durationSchema } from './units.ts';

const schema = z
  .object({
    agent: z.object({ id: z.string().regex(/^[a-z]+$/, 'expected [a-z]+') }).strict(),
    watermark: z.object({ maxOutOfOrder: durationSchema }).strict(),
    sources: z.array(z.object({ type: z.enum(['serial', 'mqtt']) })),
  })
  .strict();

test('every problem is reported as one `path: message` line', () => {
  const res = parseConfigText(
    'agent: { id: "A1" }\nwatermark: { maxOutOfOrder: 5 parsecs }\nsources: [{ type: ftp }]\nextra: 1\n',
    schema,
  );
  assert.equal(res.ok, false);
  if (res.ok) return;
  assert.equal(res.problems.length, 4, res.problems.join('\n'));
  assert.ok(res.problems.some((p) => p.startsWith('agent.id: ')));
  assert.ok(res.problems.some((p) => p.startsWith('watermark.maxOutOfOrder: invalid duration')));
  assert.ok(res.problems.some((p) => p.startsWith('sources.0.type: ')));
  assert.ok(res.problems.some((p) => p.includes('extra')));
});

test('YAML syntax errors carry line and column', () => {
  const res = parseConfigText('agent:\n  id: [unclosed\n', schema);
  assert.equal(res.ok, false);
  if (!res.ok) assert.match(res.problems[0]!, /^line \d+, column \d+: /);
});

test('a valid file parses with durations in ms', () => {
  const res = parseConfigText('agent: { id: gw }\nwatermark: { maxOutOfOrder: 5s }\nsources: []\n', schema);
  assert.ok(res.ok);
  if (res.ok) assert.equal(res.config.watermark.maxOutOfOrder, 5000);
});
