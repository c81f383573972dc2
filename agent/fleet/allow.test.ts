import assert from 'node:assert/strict';
import { test } from 'node:test';
import { disallowedKeys, mergeConfig } from './allow.ts';
import { DEFAULT_ALLOW, fleetConfigSchema } from './config.ts';

const local = {
  agent: { id: 'gw-1', dataDir: '/var/lib/edgeflow' },
  sources: [
    {
      type: 'mqtt',
      name: 'plant',
      url: 'mqtt://10.0.0.2:1883',
      topics: ['x'],
      username: 'u',
      passwordFile: '/etc/edgeflow/plant.pw',
    },
  ],
  uplink: {
    urls: ['mqtts://collector:8883'],
    passwordFile: '/etc/edgeflow/uplink.pw',
    batch: { maxItems: 500 },
  },
};
const allow = [...DEFAULT_ALLOW];

test('the default allow list takes sources, windows, rules, watermark, uplink.batch and buffer', () => {
  const doc = {
    sources: [],
    windows: [{ name: 'w', type: 'tumbling', size: '10s' }],
    rules: [],
    watermark: { maxOutOfOrder: '1s' },
    uplink: { batch: { maxItems: 100 } },
    buffer: { maxBytes: '64MiB' },
  };
  assert.deepEqual(disallowedKeys(doc, allow, local), []);
});

test('keys outside the allow list are refused, one line each', () => {
  const problems = disallowedKeys(
    { http: { listen: '0.0.0.0:9464' }, uplink: { urls: ['mqtt://evil:1883'] } },
    allow,
    local,
  );
  assert.deepEqual(problems, [
    `http: not allowed remotely (fleet.allow: ${allow.join(', ')})`,
    `uplink.urls: not allowed remotely (fleet.allow: ${allow.join(', ')})`,
  ]);
});

test('identity, data dir, the fleet block, update (but update.version) and uplink credentials are never remote', () => {
  const wide = [...allow, 'uplink', 'http', 'update.version'];
  const problems = disallowedKeys(
    {
      agent: { id: 'other' },
      fleet: { allow: ['agent'] },
      update: { version: '1.2.3', url: 'http://evil' },
      uplink: { passwordFile: '/etc/shadow', rejectUnauthorized: false, urls: ['mqtt://b:1883'] },
    },
    wide,
    local,
  );
  assert.deepEqual(problems, [
    'agent: can never be set remotely',
    'fleet: can never be set remotely',
    'update.url: can never be set remotely',
    'uplink.passwordFile: can never be set remotely',
    'uplink.rejectUnauthorized: can never be set remotely',
  ]);
});

test('a source may repeat its local credential files, not point at others', () => {
  const same = { sources: [{ ...local.sources[0], topics: ['y'] }] };
  assert.deepEqual(disallowedKeys(same, allow, local), []);
  const other = {
    sources: [
      { ...local.sources[0], passwordFile: '/etc/shadow' },
      { type: 'mqtt', name: 'new', ca: '/tmp/ca.pem' },
    ],
  };
  assert.deepEqual(disallowedKeys(other, allow, local), [
    'sources.0.passwordFile: credentials and TLS files cannot be set remotely',
    'sources.1.ca: credentials and TLS files cannot be set remotely',
  ]);
});

test('the fleet block refuses allow entries that can never be remote', () => {
  const res = fleetConfigSchema.safeParse({
    publicKeyFile: 'k.pem',
    allow: ['windows', 'agent.id', 'fleet', 'update', 'update.version', 'uplink.ca'],
  });
  assert.equal(res.success, false);
  assert.deepEqual(
    res.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    [
      'allow.1: agent.id can never be set remotely',
      'allow.2: fleet can never be set remotely',
      'allow.3: update can never be set remotely',
      'allow.5: uplink.ca can never be set remotely',
    ],
  );
  const ok = fleetConfigSchema.parse({ publicKeyFile: 'k.pem' });
  assert.deepEqual(ok.allow, [...DEFAULT_ALLOW]);
  assert.equal(ok.healthDeadline, 60_000);
});

test('merge: mappings merge key by key, lists and scalars replace', () => {
  const merged = mergeConfig(local, { uplink: { batch: { maxDelay: '200ms' } }, sources: [] });
  assert.deepEqual(merged.uplink, {
    urls: ['mqtts://collector:8883'],
    passwordFile: '/etc/edgeflow/uplink.pw',
    batch: { maxItems: 500, maxDelay: '200ms' },
  });
  assert.deepEqual(merged.sources, []);
  assert.deepEqual(merged.agent, local.agent);
  assert.equal(local.uplink.batch.maxItems, 500, 'the local object is not modified');
  assert.equal((local.uplink.batch as Record<string, unknown>).maxDelay, undefined);
});
