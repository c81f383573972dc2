import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../shared/config-file.ts';
import { collectorConfigSchema } from '../config.ts';

const MIN = 'collector: { id: c1, dataDir: /tmp/x }\nmqtt: { credentials: /etc/agents.json }\n';

test('single-node stays the default; the cluster block has documented defaults', () => {
  const res = parseConfigText(MIN, collectorConfigSchema);
  assert.ok(res.ok, res.ok ? '' : res.problems.join('\n'));
  assert.equal(res.config.collector.mode, 'single');
  assert.equal(res.config.cluster.ingestTopic, 'edgeflow.ingest');
  assert.equal(res.config.cluster.partitions, 6);
  assert.equal(res.config.cluster.dedupPerAgent, 10_000);
  assert.equal(res.config.cluster.produceTimeout, 10_000);
});

test('collector.mode: cluster without kafka is one path: problem line', () => {
  const res = parseConfigText(
    `${MIN.replace('dataDir: /tmp/x', 'dataDir: /tmp/x, mode: cluster')}`,
    collectorConfigSchema,
  );
  assert.equal(res.ok, false);
  if (!res.ok) assert.deepEqual(res.problems, ['kafka: collector.mode: cluster needs kafka']);
});

test('cluster settings are checked (unknown key, bad values)', () => {
  const res = parseConfigText(
    `${MIN}kafka: { brokers: ['127.0.0.1:9092'] }\ncluster: { partitions: 0, dedupPerAgent: 5, produceTimout: 1s }\n`,
    collectorConfigSchema,
  );
  assert.equal(res.ok, false);
  if (!res.ok) {
    assert.equal(res.problems.length, 3, res.problems.join('\n'));
    assert.ok(res.problems.some((p) => p.startsWith('cluster.partitions:')));
    assert.ok(res.problems.some((p) => p.startsWith('cluster.dedupPerAgent:')));
    assert.ok(res.problems.some((p) => p.includes('produceTimout')));
  }
});
