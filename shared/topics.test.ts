import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compileTopicPattern, parseUplinkTopic, topicPatternToFilter, uplinkTopic } from './topics.ts';

test('uplink topics round-trip', () => {
  assert.equal(uplinkTopic('gw-001', 'summaries'), 'edgeflow/v1/gw-001/summaries');
  assert.deepEqual(parseUplinkTopic('edgeflow/v1/gw-001/alerts'), { agentId: 'gw-001', kind: 'alerts' });
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-zA-Z0-9._-]{1,64}$/),
      fc.constantFrom('summaries', 'alerts', 'status', 'late' as const),
      (id, kind) => {
        assert.deepEqual(parseUplinkTopic(uplinkTopic(id, kind)), { agentId: id, kind });
      },
    ),
  );
});

test('parseUplinkTopic refuses foreign shapes', () => {
  for (const t of [
    'edgeflow/v1/gw/other',
    'edgeflow/v2/gw/alerts',
    'edgeflow/v1/gw/alerts/x',
    'edgeflow/v1//alerts',
    'edgeflow/v1/+/alerts',
    'edgeflow/v1/#/alerts',
  ]) {
    assert.equal(parseUplinkTopic(t), null, t);
  }
});

test('topic patterns fill device and metric', () => {
  const m = compileTopicPattern('plant/{device}/{metric}');
  assert.deepEqual(m('plant/press-7/temperature'), { device: 'press-7', metric: 'temperature' });
  assert.equal(m('plant/press-7'), null);
  assert.equal(m('other/press-7/temperature'), null);
  assert.equal(m('plant//temperature'), null);
  assert.equal(topicPatternToFilter('plant/{device}/{metric}'), 'plant/+/+');
  assert.deepEqual(compileTopicPattern('s/{device}/#')('s/d1/a/b'), { device: 'd1' });
});
