import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { configHash, signDesiredState, verifyDesiredState } from './fleet.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const config = {
  windows: [{ name: 'w', type: 'tumbling', size: '10s' }],
  watermark: { maxOutOfOrder: '5s' },
};
const unsigned = {
  v: 1 as const,
  kind: 'desired' as const,
  agent: 'gw-1',
  version: 3,
  rollout: 'r3',
  hash: configHash(config),
  issuedAt: 1,
  config,
};

test('a signed document verifies for its agent; key order does not matter', () => {
  const doc = signDesiredState(unsigned, privateKey);
  const { sig, config: c, ...rest } = doc;
  const reordered = JSON.stringify({ sig, config: c, ...rest });
  const r = verifyDesiredState(reordered, 'gw-1', publicKey);
  assert.equal(r.ok, true);
});

test('refused: other agent, other key, tampered config, tampered hash, not JSON', () => {
  const doc = signDesiredState(unsigned, privateKey);
  const reason = (p: string, agent = 'gw-1', key = publicKey) => {
    const r = verifyDesiredState(p, agent, key);
    assert.equal(r.ok, false);
    return (r as { reason: string }).reason;
  };
  assert.match(reason(JSON.stringify(doc), 'gw-2'), /wrong agent/);
  assert.match(reason(JSON.stringify(doc), 'gw-1', other.publicKey), /unknown key/);
  assert.match(reason(JSON.stringify(signDesiredState(unsigned, other.privateKey))), /unknown key/);
  assert.match(reason(JSON.stringify({ ...doc, config: { ...config, rules: [] } })), /bad signature/);
  assert.match(reason(JSON.stringify({ ...doc, version: 4 })), /bad signature/);
  const badHash = signDesiredState({ ...unsigned, hash: configHash({}) }, privateKey);
  assert.match(reason(JSON.stringify(badHash)), /hash mismatch/);
  assert.match(reason('{'), /not JSON/);
});
