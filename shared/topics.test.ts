import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AGENT_ID_RE,
  compileTopicPattern,
  parseUplinkTopic,
  topicPatternToFilter,
  uplinkTopic,
} from './topics.ts';

test('uplink topics round-trip', () => {
  assert.equal(uplinkTopic('gw-001', 'summaries'), 'edgeflow/v1/gw-001/summaries');
  assert.deepEqual(parseUplinkTopic('edgeflow/v1/gw-001/alerts'), { agentId: 'gw-001', kind: 'alerts' });
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/),
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

test('agent ids: the shared rule refuses path and prototype look-alikes (issue 12, item 12)', () => {
  for (const id of ['gw-1', 'A', '9.x_y-z', 'a'.repeat(64)]) assert.ok(AGENT_ID_RE.test(id), id);
  for (const id of ['', '.', '..', '-', '-rf', '__proto__', '_x', '.hidden', 'a'.repeat(65), 'a b', 'a/b']) {
    assert.ok(!AGENT_ID_RE.test(id), id);
  }
});
