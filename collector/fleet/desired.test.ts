import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configHash } from '../../shared/fleet.ts';
import { DEFAULT_ALLOWED_KEYS, fleetConfigSchema } from './config.ts';
import { globToRegExp, loadFleet, mergeConfig, selects } from './desired.ts';

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'edgeflow-fleetdir-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

const WIN = (name: string, size = '60s') =>
  `{ name: ${name}, match: { metric: t }, type: tumbling, size: ${size} }`;

test('globs: * and ? only, everything else literal', () => {
  assert.ok(globToRegExp('gw-*').test('gw-12'));
  assert.ok(globToRegExp('gw-?').test('gw-1'));
  assert.ok(!globToRegExp('gw-?').test('gw-12'));
  assert.ok(!globToRegExp('gw.1').test('gwx1'));
});

test('selectors: ids and labels must all hold; an empty selector selects nobody', () => {
  const a = { id: 'gw-1', labels: { site: 'plant-1', line: 'a' } };
  assert.ok(selects({ agents: ['gw-*'] }, a));
  assert.ok(selects({ agents: ['x', 'gw-1'], labels: { site: 'plant-*' } }, a));
  assert.ok(!selects({ agents: ['gw-*'], labels: { line: 'b' } }, a));
  assert.ok(!selects({ labels: { missing: '*' } }, a));
  assert.ok(!selects({}, a));
});

test('merge: objects key by key, arrays and scalars replaced, null removes', () => {
  assert.deepEqual(
    mergeConfig(
      { watermark: { maxOutOfOrder: '5s', idleTimeout: '30s' }, windows: [1, 2], rules: [] },
      { watermark: { idleTimeout: '1m' }, windows: [3], rules: null },
    ),
    { watermark: { maxOutOfOrder: '5s', idleTimeout: '1m' }, windows: [3] },
  );
});

test('merge order: groups by priority then file path, then the agent override', () => {
  const d = dir({
    'b-base.yaml': `kind: group\nname: base\nmatch: { agents: ["gw-*"] }\nconfig: { windows: [${WIN('w1')}], watermark: { maxOutOfOrder: 5s } }\n`,
    'a-site.yaml': `kind: group\nname: site\npriority: 10\nmatch: { labels: { site: north } }\nconfig: { watermark: { maxOutOfOrder: 9s } }\n`,
    'agents/gw-2.yaml': `kind: agent\nagent: gw-2\nconfig: { windows: [${WIN('w2')}] }\n`,
  });
  try {
    const r = loadFleet(d, DEFAULT_ALLOWED_KEYS, [
      { id: 'gw-1', labels: { site: 'north' } },
      { id: 'gw-2', labels: {} },
      { id: 'other', labels: {} },
    ]);
    assert.ok(r.ok, r.ok ? '' : r.problems.join('\n'));
    const g1 = r.desired.get('gw-1')!;
    assert.deepEqual(g1.from, ['b-base.yaml#base', 'a-site.yaml#site']);
    assert.deepEqual(g1.config.watermark, { maxOutOfOrder: '9s' });
    assert.equal(g1.hash, configHash(g1.config));
    const g2 = r.desired.get('gw-2')!;
    assert.deepEqual(g2.from, ['b-base.yaml#base', 'agents/gw-2.yaml']);
    assert.equal((g2.config.windows as { name: string }[])[0]!.name, 'w2');
    assert.equal(r.desired.has('other'), false, 'an agent no document selects gets nothing');
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('problems: one `file: path: problem` line each; identity and unlisted keys refused; merged configs checked with the agent schema', () => {
  const d = dir({
    'syntax.yaml': 'kind: group\nname: [unclosed\n',
    'shape.yaml': 'kind: group\nname: s\nmatch: { agents: 3 }\nconfig: {}\n',
    'keys.yaml':
      'kind: group\nname: k\nmatch: { agents: ["*"] }\nconfig: { agent: { id: x }, uplink: { username: u, compress: gzip, batch: { maxItems: 10 } }, http: {}, checkpoint: {} }\n',
  });
  try {
    const r = loadFleet(d, DEFAULT_ALLOWED_KEYS, [{ id: 'gw-1', labels: {} }]);
    assert.equal(r.ok, false);
    const p = r.ok ? [] : r.problems;
    assert.ok(
      p.some((l) => /^syntax\.yaml: line \d+, column \d+: /.test(l)),
      p.join('\n'),
    );
    assert.ok(
      p.some((l) => /^shape\.yaml: match\.agents: /.test(l)),
      p.join('\n'),
    );
    assert.ok(!p.some((l) => l.includes('config.uplink.batch')), 'uplink.batch is allowed by default');
    for (const k of ['agent', 'uplink.username', 'uplink.compress', 'http', 'checkpoint'])
      assert.ok(
        p.some((l) => l.startsWith(`keys.yaml: config.${k}: not settable`)),
        k,
      );
  } finally {
    rmSync(d, { recursive: true });
  }
  const d2 = dir({
    'g.yaml': `kind: group\nname: g\nmatch: { agents: ["gw-*"] }\nconfig: { windows: [${WIN('w', 'banana')}], rules: [{ name: r, kind: threshold, on: window:nope }] }\n`,
  });
  try {
    const r = loadFleet(
      d2,
      DEFAULT_ALLOWED_KEYS,
      [1, 2, 3, 4, 5].map((i) => ({ id: `gw-${i}`, labels: {} })),
    );
    assert.equal(r.ok, false);
    const p = r.ok ? [] : r.problems;
    assert.ok(
      p.some((l) => /^g\.yaml#g: windows\.0\.size: .+\(agents: gw-1, gw-2, gw-3 \(\+2\)\)$/.test(l)),
      p.join('\n'),
    );
  } finally {
    rmSync(d2, { recursive: true });
  }
});

test('config: identity keys never allowed; a console beyond loopback needs a token', () => {
  const r = fleetConfigSchema.safeParse({
    dir: 'f',
    signingKeyFile: 'k',
    allowedKeys: ['agent'],
    console: { enabled: true, listen: '0.0.0.0:9466' },
  });
  assert.equal(r.success, false);
  const paths = r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
  assert.deepEqual(paths.sort(), ['allowedKeys.0', 'console.listen']);
  const ok = fleetConfigSchema.parse({ dir: 'f', signingKeyFile: 'k' });
  assert.equal(ok.console.enabled, false);
  assert.equal(ok.console.listen, '127.0.0.1:9466');
  assert.equal(ok.autoApply, true);
});

test('uplink.batch from a document is checked with the agent schema (the uplink address stays local)', () => {
  const d = dir({
    'b.yaml':
      'kind: group\nname: b\nmatch: { agents: ["gw-*"] }\nconfig: { uplink: { batch: { maxItems: 100, maxDelay: 2s } } }\n',
  });
  try {
    const r = loadFleet(d, DEFAULT_ALLOWED_KEYS, [{ id: 'gw-1', labels: {} }]);
    assert.ok(r.ok, r.ok ? '' : r.problems.join('\n'));
    assert.deepEqual(r.desired.get('gw-1')!.config, { uplink: { batch: { maxItems: 100, maxDelay: '2s' } } });
    writeFileSync(
      join(d, 'b.yaml'),
      'kind: group\nname: b\nmatch: { agents: ["gw-*"] }\nconfig: { uplink: { batch: { maxItems: 0 } } }\n',
    );
    const bad = loadFleet(d, DEFAULT_ALLOWED_KEYS, [{ id: 'gw-1', labels: {} }]);
    assert.equal(bad.ok, false);
    assert.match(bad.ok ? '' : bad.problems[0]!, /^b\.yaml#b: uplink\.batch\.maxItems: /);
  } finally {
    rmSync(d, { recursive: true });
  }
});
