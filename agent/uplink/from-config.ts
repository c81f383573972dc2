// The uplink runner's options from the agent configuration (`uplink:` in agent.yaml, agent/config.ts).
// Kept beside the uplink, as collector/sinks/from-config.ts is beside the sinks, so that a new uplink
// key touches this folder and the schema only.
import type { UplinkConfig } from '../config.ts';
import type { MqttUplinkOptions } from './mqtt-uplink.ts';

export function uplinkOptionsFrom(agentId: string, up: UplinkConfig): MqttUplinkOptions {
  return {
    agentId,
    urls: up.urls,
    username: up.username,
    passwordFile: up.passwordFile,
    ca: up.ca,
    cert: up.cert,
    key: up.key,
    rejectUnauthorized: up.rejectUnauthorized,
    batch: up.batch,
    maxInFlight: up.maxInFlight,
    drainRate: up.drainRate,
    compress: up.compress,
    statusInterval: up.statusInterval,
  };
}
