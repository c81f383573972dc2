import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mqttConnectOptions, mqttUrlOptions } from './mqtt-url.ts';

describe('mqttUrlOptions', () => {
  it('takes protocol, host and port as mqtt.js does, without the legacy url.parse()', () => {
    assert.deepEqual(mqttUrlOptions('mqtt://127.0.0.1:1883'), {
      protocol: 'mqtt',
      host: '127.0.0.1',
      port: 1883,
    });
    assert.deepEqual(mqttUrlOptions('mqtts://broker.example'), { protocol: 'mqtts', host: 'broker.example' });
  });
  it('strips the brackets of an IPv6 literal', () => {
    assert.deepEqual(mqttUrlOptions('mqtt://[::1]:18883'), { protocol: 'mqtt', host: '::1', port: 18883 });
  });
  it('keeps the path and query for websockets only', () => {
    assert.equal(mqttUrlOptions('wss://h:443/mqtt?x=1').path, '/mqtt?x=1');
    assert.equal(mqttUrlOptions('mqtt://h/ignored').path, undefined);
  });
  it('decodes credentials and a clientId query parameter', () => {
    const o = mqttUrlOptions('mqtt://us%40er:p%3Ass@h:1883/?clientId=gw-1');
    assert.equal(o.username, 'us@er');
    assert.equal(o.password, 'p:ss');
    assert.equal(o.clientId, 'gw-1');
  });
  it("overlays the caller's options, skipping undefined ones", () => {
    const o = mqttConnectOptions('mqtt://u:p@h:1', { username: undefined, port: 2, clientId: 'c' });
    assert.deepEqual(o, {
      protocol: 'mqtt',
      host: 'h',
      port: 2,
      username: 'u',
      password: 'p',
      clientId: 'c',
    });
  });
});
