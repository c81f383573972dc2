// docs/agent-config.md is in step with the schemas and registries (issue 13): its generated part is what
// `npm run docs:config` writes, and every key of the schema is also explained in the hand-written part.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DOC_PATH, expectedDoc, START } from '../../scripts/docs-config.ts';

const doc = readFileSync(DOC_PATH, 'utf8');

test('the generated tables of docs/agent-config.md match the schemas (run `npm run docs:config`)', () => {
  assert.ok(doc.includes(START), 'docs/agent-config.md has no generated part: run `npm run docs:config`');
  assert.equal(doc, expectedDoc(doc), 'docs/agent-config.md is out of step: run `npm run docs:config`');
});

test('every key in the generated tables is explained by hand (rule kinds: agent/rules/README.md)', () => {
  const [handWritten, generated] = doc.split(START) as [string, string];
  const rulesReadme = readFileSync(new URL('../../agent/rules/README.md', import.meta.url), 'utf8');
  const [config, rules] = generated.split('### rules[]') as [string, string];
  const keysOf = (text: string) => new Set([...text.matchAll(/^\| `([A-Za-z.]+)` \|/gm)].map((m) => m[1]!));
  const explained = (path: string, where: string) =>
    where.includes(`\`${path}\``) || where.includes(path.split('.').at(-1)!);
  const missing = [
    ...[...keysOf(config)].filter((k) => !explained(k, handWritten)),
    ...[...keysOf(rules)].filter((k) => !explained(k, handWritten + rulesReadme)),
  ];
  assert.deepEqual(missing, [], `keys without an explanation: ${missing.join(', ')}`);
});
