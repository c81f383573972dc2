// The uplink transports, one line each (today: mqtt). The config's `uplink:` has no `type` key (SPEC.md
// 2): the one transport is `mqtt`; a second one would add the key with `mqtt` as its default.
import { Registry } from '../../shared/registry.ts';
import { mqttUplink, type UplinkDescriptor } from './mqtt.descriptor.ts';

export const uplinkTransports = new Registry<UplinkDescriptor>('uplink transport', [mqttUplink]);
/** The transport `uplink:` configures. */
export const defaultUplink = mqttUplink;
