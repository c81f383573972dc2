// Frames as MQTT messages, one per frame, on a topic built from --topic-pattern ({device}, {metric}).
// QoS 1: a frame counts when its PUBACK arrives; QoS 0: when mqtt.js has handed it to the socket.
// At most `maxInFlight` (--mqtt-max-in-flight) publishes wait for their confirmation; `write` resolves
// only when the window has room again, which is the back-pressure on the scheduler.
// After a reconnect mqtt.js re-sends its un-acknowledged QoS 1 messages one per PUBACK (the next only
// when the previous is acknowledged) before anything new, so against a receiver that acknowledges at
// its checkpoint (the agent's embedded broker) a large window replays at one message per checkpoint.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../../shared/log.ts';
import type { Frame } from '../fleet.ts';
import type { Confirm, Output } from './output.ts';

const OPEN_TIMEOUT_MS = 30_000;
/** --mqtt-max-in-flight's default. */
export const DEFAULT_MAX_IN_FLIGHT = 1000;

export interface MqttOutputOptions {
  url: string;
  topicPattern: string;
  qos: 0 | 1;
  /** Publishes awaiting confirmation before `write` waits. [1000] */
  maxInFlight?: number;
  username?: string;
  password?: string;
  clientId?: string;
}

export function topicFor(pattern: string, device: string, metric: string | null): string {
  return pattern.replaceAll('{device}', device).replaceAll('{metric}', metric ?? '');
}

export class MqttOutput implements Output {
  readonly name = 'mqtt';
  private client: MqttClient | null = null;
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly o: MqttOutputOptions,
    private readonly log: Logger,
  ) {}

  async open(): Promise<void> {
    const opts: IClientOptions = { reconnectPeriod: 1000, connectTimeout: 10_000, clean: true };
    if (this.o.username !== undefined) opts.username = this.o.username;
    if (this.o.password !== undefined) opts.password = this.o.password;
    if (this.o.clientId !== undefined) opts.clientId = this.o.clientId;
    // Not connectAsync: it gives up on the first error, and a refused connection is normal here (the
    // broker may be an agent that is still starting or was just killed). mqtt.js keeps retrying every
    // reconnectPeriod; the first CONNACK ends the wait, a refusal by the broker itself is fatal.
    const client = mqtt.connect(this.o.url, opts);
    this.client = client;
    client.on('error', (err) => this.log.warn({ err: err.message }, 'mqtt error'));
    await new Promise<void>((resolve, reject) => {
      // Settles once; its listeners go with it, so a refusal on a later reconnect is only logged.
      const settle = (err?: Error) => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', onError);
        if (err === undefined) return resolve();
        client.end(true);
        reject(err);
      };
      const onConnect = () => settle();
      // CONNACK refusals (bad credentials, not authorized) come with a numeric code: retrying won't help.
      const onError = (err: Error & { code?: unknown }) => {
        if (typeof err.code === 'number') settle(err);
      };
      const timer = setTimeout(
        () => settle(new Error(`mqtt: no connection to ${this.o.url} within ${OPEN_TIMEOUT_MS} ms`)),
        OPEN_TIMEOUT_MS,
      );
      client.on('connect', onConnect);
      client.on('error', onError);
    });
    client.on('offline', () =>
      this.log.warn({ url: this.o.url }, 'mqtt offline; publishes wait for reconnect'),
    );
    client.on('connect', () => this.log.info({ inFlight: this.inFlight }, 'mqtt reconnected'));
    this.log.info({ url: this.o.url, qos: this.o.qos }, 'mqtt connected');
  }

  async write(frames: readonly Frame[], sink: Confirm): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('mqtt output not open');
    for (const f of frames) {
      while (this.inFlight >= (this.o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT))
        await new Promise<void>((r) => this.waiters.push(r));
      this.inFlight++;
      client.publish(
        topicFor(this.o.topicPattern, f.device, f.metric),
        f.payload,
        { qos: this.o.qos },
        (err) => {
          this.inFlight--;
          if (err) {
            this.log.warn({ err: err.message }, 'mqtt publish failed');
            sink.failed(f);
          } else sink.written(f);
          this.waiters.shift()?.();
        },
      );
    }
  }

  async close(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((r) => this.waiters.push(r));
    await this.client?.endAsync();
  }
}
