// The uplink the agent runs: the runner's policy (runner.ts) over MQTT I/O (mqtt-transport.ts), the
// pair collector/sinks/runner.ts + sink.ts has on the collector side (issue 13). The split keeps every
// policy testable over any transport and lets a second transport (or a test double for a fault that
// cannot be produced for real) plug in without touching batching, failover or the status.
import type { Outbox } from '../outbox/outbox.ts';
import { MqttTransport, type MqttTransportOptions } from './mqtt-transport.ts';
import { UplinkRunner, type UplinkRunnerDeps, type UplinkRunnerOptions } from './runner.ts';

export type { DownlinkHandler, UplinkState } from './runner.ts';
export { DRAIN_ORDER } from './runner.ts';

export type MqttUplinkOptions = UplinkRunnerOptions & MqttTransportOptions;
export type MqttUplinkDeps = UplinkRunnerDeps;

export class MqttUplink extends UplinkRunner {
  constructor(opts: MqttUplinkOptions, outbox: Outbox, deps: MqttUplinkDeps = {}) {
    super(opts, new MqttTransport(opts), outbox, deps);
  }
}
