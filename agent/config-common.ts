// Config value types more than one part of the agent config uses (sources, uplink, http): one
// definition each, so a host:port or an MQTT URL is checked the same way everywhere.
import { z } from 'zod';

export const nameRe = /^[a-zA-Z0-9._-]{1,64}$/;
export const name = z.string().regex(nameRe, 'expected 1-64 characters of [a-zA-Z0-9._-]');
export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]*):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464')
  // issue 12 item 3: `:70000` passed the pattern and crashed `run` with a RangeError
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');
export const mqttUrl = z
  .string()
  .regex(
    /^(mqtts?|wss?|tcp|tls):\/\/[^\s]+$/,
    'expected an MQTT URL such as mqtt://host:1883 or mqtts://host:8883',
  );
export const tlsFiles = {
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
};
export const topicPattern = z
  .string()
  .regex(/^[^#+]*(\{device\}|\{metric\})?[^#+]*$/, 'expected segments with {device} / {metric}');

/** A file a config entry names, checked by check-config before anything starts (agent/config-files.ts). */
export interface ConfigFile {
  /** The key inside the entry, e.g. `passwordFile`. */
  key: string;
  path: string | undefined;
  kind: 'secret' | 'ca' | 'cert' | 'key' | 'credentials' | 'ed25519-public';
}
