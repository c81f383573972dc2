// createSource(config): the source for one entry of `sources:` (SPEC.md 2). Construction has no side
// effects (nothing opens or listens before start()), so a config can be checked without touching devices.
import type { SourceConfig } from '../config.ts';
import { MqttSource } from './mqtt.ts';
import { MqttBrokerSource } from './mqtt-broker.ts';
import { SerialSource } from './serial.ts';
import type { Source, SourceContext } from './source.ts';

export type { RawFrame, Source, SourceContext, SourceHooks, SourceState, SourceStatus } from './source.ts';

export function createSource(cfg: SourceConfig, agentId: string, ctx: SourceContext): Source {
  switch (cfg.type) {
    case 'serial':
      return new SerialSource(
        {
          name: cfg.name,
          path: cfg.path,
          baudRate: cfg.baudRate,
          dataBits: cfg.dataBits,
          parity: cfg.parity,
          stopBits: cfg.stopBits,
          maxFrameLength: cfg.maxFrameLength,
          device: cfg.device,
        },
        ctx,
      );
    case 'mqtt':
      return new MqttSource(
        {
          name: cfg.name,
          agentId,
          url: cfg.url,
          topics: cfg.topics,
          topicPattern: cfg.topicPattern,
          qos: cfg.qos,
          clientId: cfg.clientId,
          username: cfg.username,
          passwordFile: cfg.passwordFile,
          ca: cfg.ca,
          cert: cfg.cert,
          key: cfg.key,
        },
        ctx,
      );
    case 'mqtt-broker':
      return new MqttBrokerSource(
        {
          name: cfg.name,
          listen: cfg.listen,
          topicPattern: cfg.topicPattern,
          credentials: cfg.credentials,
          username: cfg.username,
          passwordFile: cfg.passwordFile,
          allowAnonymous: cfg.allowAnonymous,
          maxPacketSize: cfg.maxPacketSize,
          maxConnections: cfg.maxConnections,
        },
        ctx,
      );
  }
}
