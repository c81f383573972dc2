// deploy/compose: no Docker engine here, so the stack cannot be started. What can be checked is: the
// file's structure (services, images, ports, health-gated start order), that every bind-mounted path
// and the Dockerfile's COPY sources exist, that every ${VAR} has a value in .env.example, that the
// compose collector config passes `edgeflow-collector check-config`, and, when a compose CLI exists
// (`docker compose` plugin or Debian's docker-compose 1.29), its own `config` validation.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/services.ts';

const ROOT = repoRoot();
const DIR = join(ROOT, 'deploy/compose');
const FILE = join(DIR, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
const compose = () =>
  parse(readFileSync(FILE, 'utf8')) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };

test('services, images and ports', () => {
  const { services } = compose();
  assert.deepEqual(Object.keys(services).sort(), ['collector', 'grafana', 'influxdb', 'kafka']);
  assert.equal(services.kafka!.image, 'apache/kafka:3.9.1');
  assert.equal(services.influxdb!.image, 'influxdb:1.8');
  assert.match(services.grafana!.image!, /^grafana\/grafana:\d+\.\d+\.\d+$/);
  assert.equal(services.collector!.build!.dockerfile, 'deploy/compose/Dockerfile.collector');
  const ports = (s: string) => (services[s]!.ports ?? []).map((p) => p.split(':').at(-1));
  assert.deepEqual(ports('collector'), ['1883', '9465']);
  assert.deepEqual(ports('kafka'), ['9094']);
  assert.deepEqual(ports('influxdb'), ['8086']);
  assert.deepEqual(ports('grafana'), ['3000']);
  // Admin/HTTP ports only on loopback; MQTT for agents on all interfaces.
  for (const [name, s] of Object.entries(services)) {
    for (const p of s.ports ?? [])
      if (!p.startsWith('1883:')) assert.match(p, /^127\.0\.0\.1:/, `${name}: ${p}`);
  }
  // The collector starts once Kafka and InfluxDB answer (it creates its topics at start).
  assert.deepEqual(services.collector!.depends_on, {
    kafka: { condition: 'service_healthy' },
    influxdb: { condition: 'service_healthy' },
  });
  assert.ok(services.kafka!.healthcheck && services.influxdb!.healthcheck);
  // KRaft single node, topics not auto-created (as in the test bed).
  const k = services.kafka!.environment!;
  assert.equal(k.KAFKA_PROCESS_ROLES, 'broker,controller');
  assert.equal(k.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false');
  assert.equal(k.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, 1);
});

test('bind mounts and Dockerfile sources exist; named volumes are declared', () => {
  const { services, volumes } = compose();
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const [src] = v.split(':');
      if (src!.startsWith('.') || isAbsolute(src!)) {
        assert.ok(existsSync(resolve(DIR, src!)), `${name}: ${src} does not exist`);
      } else {
        assert.ok(src! in volumes, `${name}: volume ${src} not declared`);
      }
    }
  }
  const b = services.collector!.build!;
  const context = resolve(DIR, b.context);
  assert.equal(context, resolve(ROOT));
  const dockerfile = readFileSync(join(context, b.dockerfile), 'utf8');
  assert.match(dockerfile, /^FROM node:24-slim$/m);
  assert.match(dockerfile, /--omit=dev/);
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const src of m[1]!.split(' ')) assert.ok(existsSync(join(context, src)), `COPY ${src}: missing`);
  }
  // tsx runs the sources at runtime, so it must be a production dependency.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  assert.ok(pkg.dependencies.tsx, 'tsx must be in dependencies (the image installs --omit=dev)');
  // The collector config the stack mounts names the files the image provides.
  const cfg = readFileSync(join(DIR, 'collector.yaml'), 'utf8');
  assert.match(cfg, /passwordFile: \/run\/edgeflow\/influx-password/);
  assert.match(
    readFileSync(join(DIR, 'collector-entrypoint.sh'), 'utf8'),
    /\/run\/edgeflow\/influx-password/,
  );
});

test('every interpolated variable the file needs has a value in .env.example', () => {
  const text = readFileSync(FILE, 'utf8');
  const needed = new Set([...text.matchAll(/\$\{(\w+)(?::?[?-][^}]*)?\}/g)].map((m) => m[1]!));
  const example = readFileSync(join(DIR, '.env.example'), 'utf8');
  const given = new Set([...example.matchAll(/^(\w+)=.+$/gm)].map((m) => m[1]!));
  for (const v of needed) assert.ok(given.has(v), `${v} missing in .env.example`);
  assert.ok(needed.size >= 4);
});

test('the compose collector config passes check-config', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'collector/main.ts'),
      'check-config',
      '--config',
      join(DIR, 'collector.yaml'),
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
});

test('compose CLI validation (docker compose config), when a compose CLI is installed', (t) => {
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
      cwd: dirname(FILE),
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, `${cmd.join(' ')} config: ${r.stderr}`);
});
