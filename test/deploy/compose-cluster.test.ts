// deploy/compose/cluster (issue 17): no Docker engine here, so, as test/deploy/compose.test.ts does for
// the single-node stack: the file's structure (3 brokers with replication 3 and min.insync.replicas 2,
// 3 ingest nodes sharing one credentials volume, 2 Kafka forwarders, 1 InfluxDB forwarder), bind mounts
// exist, every ${VAR} has a value in .env.example, the config passes check-config, and the compose
// CLI's own validation when one is installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/services.ts';

const ROOT = repoRoot();
const DIR = join(ROOT, 'deploy/compose/cluster');
const FILE = join(DIR, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }>;
}
const compose = () =>
  parse(readFileSync(FILE, 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };

test('cluster stack: roles, replication and shared credentials', () => {
  const { services } = compose();
  assert.deepEqual(Object.keys(services).sort(), [
    'forwarder-1',
    'forwarder-2',
    'influx-forwarder',
    'influxdb',
    'ingest-1',
    'ingest-2',
    'ingest-3',
    'kafka-1',
    'kafka-2',
    'kafka-3',
  ]);
  for (const k of ['kafka-1', 'kafka-2', 'kafka-3']) {
    const e = services[k]!.environment!;
    assert.equal(e.KAFKA_DEFAULT_REPLICATION_FACTOR, 3);
    assert.equal(e.KAFKA_MIN_INSYNC_REPLICAS, 2);
    assert.equal(e.KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR, 3);
    assert.equal(e.KAFKA_TRANSACTION_STATE_LOG_MIN_ISR, 2);
    assert.equal(e.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false');
    assert.equal(e.KAFKA_NODE_ID, Number(k.slice(-1)));
  }
  for (const n of ['ingest-1', 'ingest-2', 'ingest-3']) {
    const s = services[n]!;
    assert.deepEqual(s.command, ['run', '--config', '/etc/edgeflow/cluster.yaml']);
    assert.ok(
      s.volumes!.includes('credentials:/var/lib/edgeflow-credentials'),
      `${n} shares the credentials`,
    );
    assert.equal(s.build!.dockerfile, 'deploy/compose/Dockerfile.collector');
  }
  assert.deepEqual(services['forwarder-1']!.command!.slice(0, 3), ['forward', '--to', 'kafka']);
  assert.deepEqual(services['forwarder-2']!.command!.slice(0, 3), ['forward', '--to', 'kafka']);
  assert.deepEqual(services['influx-forwarder']!.command!.slice(0, 3), ['forward', '--to', 'influx']);
  // MQTT for agents on all interfaces, everything else on loopback only.
  for (const [name, s] of Object.entries(services)) {
    for (const p of s.ports ?? [])
      if (!/^188[345]:1883$/.test(p)) assert.match(p, /^127\.0\.0\.1:/, `${name}: ${p}`);
  }
});

test('cluster stack: mounts exist, volumes declared, variables in .env.example', () => {
  const { services, volumes } = compose();
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const [src] = v.split(':');
      if (src!.startsWith('.') || isAbsolute(src!))
        assert.ok(existsSync(resolve(DIR, src!)), `${name}: ${src}`);
      else assert.ok(src! in volumes, `${name}: volume ${src} not declared`);
    }
    if (s.build) assert.equal(resolve(DIR, s.build.context), resolve(ROOT));
  }
  const text = readFileSync(FILE, 'utf8');
  const needed = new Set([...text.matchAll(/\$\{(\w+)(?::?[?-][^}]*)?\}/g)].map((m) => m[1]!));
  const example = readFileSync(join(DIR, '.env.example'), 'utf8');
  const given = new Set([...example.matchAll(/^(\w+)=.+$/gm)].map((m) => m[1]!));
  for (const v of needed) assert.ok(given.has(v), `${v} missing in .env.example`);
});

test('the cluster config passes check-config and is a cluster-mode config', () => {
  const cfg = join(DIR, 'cluster.yaml');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'collector/main.ts'), 'check-config', '--config', cfg],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const c = parse(readFileSync(cfg, 'utf8')) as {
    collector: { mode: string };
    cluster: { replicationFactor: number };
  };
  assert.equal(c.collector.mode, 'cluster');
  assert.equal(c.cluster.replicationFactor, 3);
});

test('compose CLI validation of the cluster stack, when a compose CLI is installed', (t) => {
  const plugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  const cmd =
    plugin.status === 0
      ? ['docker', 'compose']
      : spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0
        ? ['docker-compose']
        : null;
  if (!cmd) {
    t.skip(
      'neither `docker compose` nor `docker-compose` is installed; the structural tests above still ran',
    );
    return;
  }
  const r = spawnSync(
    cmd[0]!,
    [...cmd.slice(1), '--env-file', join(DIR, '.env.example'), '-f', FILE, 'config', '-q'],
    {
      cwd: DIR,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, `${cmd.join(' ')} config: ${r.stderr}`);
});
