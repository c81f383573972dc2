// docs/fleet.md's example documents are valid: the guide cannot drift from the schema it teaches.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_ALLOWED_KEYS, fleetConfigSchema } from './config.ts';
import { loadFleet } from './desired.ts';

test('the fleet documents in docs/fleet.md load and merge as described', () => {
  const md = readFileSync(join(import.meta.dirname, '../../docs/fleet.md'), 'utf8');
  const blocks = [...md.matchAll(/```yaml\n# ((?:groups|agents)\/[\w.-]+\.yaml)[^\n]*\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 3);
  const d = mkdtempSync(join(tmpdir(), 'edgeflow-fleetdoc-'));
  try {
    for (const [, file, body] of blocks) {
      mkdirSync(dirname(join(d, file!)), { recursive: true });
      writeFileSync(join(d, file!), body!);
    }
    const r = loadFleet(d, DEFAULT_ALLOWED_KEYS, [
      { id: 'gw-17', labels: { site: 'north' } },
      { id: 'gw-2', labels: {} },
    ]);
    assert.ok(r.ok, r.ok ? '' : r.problems.join('\n'));
    assert.deepEqual(r.desired.get('gw-17')!.from, [
      'groups/base.yaml#base',
      'groups/north.yaml#north',
      'agents/gw-17.yaml',
    ]);
    assert.deepEqual(r.desired.get('gw-2')!.from, ['groups/base.yaml#base']);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('the fleet: block in docs/fleet.md is a valid collector config block', () => {
  const md = readFileSync(join(import.meta.dirname, '../../docs/fleet.md'), 'utf8');
  const block = /```yaml\n# collector\.yaml\n([\s\S]*?)```/.exec(md)?.[1];
  assert.ok(block);
  const res = fleetConfigSchema.safeParse((parse(block) as { fleet: unknown }).fleet);
  assert.ok(res.success, res.success ? '' : JSON.stringify(res.error.issues));
  assert.deepEqual(res.data.allowedKeys, [...DEFAULT_ALLOWED_KEYS]);
});
