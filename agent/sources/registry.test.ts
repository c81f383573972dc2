// The source registry: kinds, capabilities, and factories that load an implementation only when a
// config uses it (issue 13/14).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { FakeClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { agentConfigSchema } from '../config.ts';
import { createSource, sources } from './registry.ts';

const loaded = (pkg: string) =>
  Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes(`/node_modules/${pkg}/`));

test('kinds and capabilities: only serial is not replayable and needs a tty', () => {
  assert.deepEqual(sources.names(), ['serial', 'mqtt', 'mqtt-broker']);
  assert.deepEqual(
    sources.names((d) => !d.capabilities.replayable),
    ['serial'],
  );
  assert.deepEqual(
    sources.names((d) => d.capabilities.needsTty),
    ['serial'],
  );
  assert.deepEqual(
    sources.names((d) => d.capabilities.listens),
    ['mqtt-broker'],
  );
});

test('a serial source refuses a format that needs a topic; an unknown type names the known ones', () => {
  const res = agentConfigSchema().safeParse({
    agent: { id: 'a', dataDir: '/tmp/x' },
    sources: [
      { type: 'serial', name: 's', path: '/dev/ttyUSB0', format: 'number' },
      { type: 'modbus', name: 'm' },
    ],
  });
  assert.equal(res.success, false);
  const messages = res.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(messages, [
    'sources.0.format: Invalid option: expected one of "json"|"csv"|"kv"|"senml"',
    'sources.1.type: expected type to be one of serial | mqtt | mqtt-broker',
  ]);
});

test('building an mqtt source loads neither serialport nor aedes', async () => {
  const cfg = agentConfigSchema().parse({
    agent: { id: 'a', dataDir: '/tmp/x' },
    sources: [{ type: 'mqtt', name: 'm', url: 'mqtt://127.0.0.1:1', topics: ['t/#'] }],
  });
  const ctx = { log: nullLogger(), clock: new FakeClock(0), metrics: new Registry() };
  const source = await createSource(cfg.sources[0]!, 'a', ctx);
  assert.equal(source.type, 'mqtt');
  assert.equal(loaded('serialport'), false, 'serialport loaded by an mqtt-only config');
  assert.equal(loaded('aedes'), false, 'aedes loaded by an mqtt-only config');
  const serial = agentConfigSchema().parse({
    agent: { id: 'a', dataDir: '/tmp/x' },
    sources: [{ type: 'serial', name: 's', path: '/dev/null' }],
  });
  await createSource(serial.sources[0]!, 'a', ctx);
  assert.equal(loaded('serialport'), true, 'the serial factory loads serialport when asked');
});
