// docs/spec.md is the public contract copied into the repository (issue 13); this keeps it in step
// with the product's SPEC.md where that is present (EDGEFLOW_SPEC_PATH, default ../shared/SPEC.md
// beside the repository; shared/outside.ts) and says plainly why it skips where it is not.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { notFound, outsidePath } from '../../shared/outside.ts';

const local = readFileSync(new URL('../../docs/spec.md', import.meta.url), 'utf8');
const upstream = outsidePath('spec');

test('docs/spec.md says where it comes from and where the extensions are', () => {
  const header = local.slice(0, local.indexOf('-->') + 3);
  assert.match(header, /^<!-- .*SPEC\.md.*EDGEFLOW_SPEC_PATH.*docs\/spec-extensions\.md/s);
});

test('docs/spec.md is the upstream SPEC.md, word for word', {
  skip: existsSync(upstream) ? false : notFound('spec', 'the upstream SPEC.md'),
}, () => {
  const body = local.slice(local.indexOf('-->\n\n') + 5);
  assert.equal(
    body,
    readFileSync(upstream, 'utf8'),
    `docs/spec.md differs from ${upstream}: copy the new contract in (keep the first comment line)`,
  );
});
