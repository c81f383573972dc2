// MQTT I/O for the uplink (transport.ts): mqtt.js, TLS, credentials. One fresh mqtt.js client per
// connection attempt with `clean: true` and `reconnectPeriod: 0`: mqtt.js's in-memory store would
// re-publish in-flight packets after a reconnect, and a persistent session would have the broker hold
// them too; with both off, the only copy that matters is the outbox row (runner.ts header).
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import { readSecretFile } from '../../shared/config-file.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { mqttConnectOptions } from '../../shared/mqtt-url.ts';
import type { TransportPublishOptions, UplinkTransport, UplinkTransportEvents } from './transport.ts';

export interface MqttTransportOptions {
  /** For the clientId `edgeflow-{agentId}`. */
  agentId: string;
  username?: string;
  /** File holding the password (trailing newline trimmed). Never logged. */
  passwordFile?: string;
  /** PEM file paths. */
  ca?: string;
  cert?: string;
  key?: string;
  /** [true] */
  rejectUnauthorized?: boolean;
  /** 4 = MQTT 3.1.1 (the collector's aedes speaks only this), 5 = MQTT 5 (content type property). [4] */
  protocolVersion?: 4 | 5;
  /** ms [10000] */
  connectTimeout?: number;
  /** s [30] */
  keepalive?: number;
}

export class MqttTransport extends EventEmitter<UplinkTransportEvents> implements UplinkTransport {
  private client: MqttClient | null = null;
  private secrets: Pick<IClientOptions, 'password' | 'ca' | 'cert' | 'key'> = {};
  private readonly protocolVersion: 4 | 5;

  constructor(private readonly o: MqttTransportOptions) {
    super();
    this.protocolVersion = o.protocolVersion ?? 4;
  }

  init(): void {
    const readFile = (what: string, path: string | undefined, secret = false) => {
      if (path === undefined) return undefined;
      try {
        return secret ? readSecretFile(path) : readFileSync(path);
      } catch (e) {
        throw new EdgeflowError(
          'CONFIG_INVALID',
          `uplink.${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`,
          { cause: e },
        );
      }
    };
    this.secrets = {
      password: readFile('passwordFile', this.o.passwordFile, true) as string | undefined,
      ca: readFile('ca', this.o.ca) as Buffer | undefined,
      cert: readFile('cert', this.o.cert) as Buffer | undefined,
      key: readFile('key', this.o.key) as Buffer | undefined,
    };
  }

  connect(url: string): void {
    this.end();
    const opts: IClientOptions = {
      clientId: `edgeflow-${this.o.agentId}`,
      clean: true, // see the header: the outbox owns retransmission
      reconnectPeriod: 0, // the runner reconnects, with failover
      connectTimeout: this.o.connectTimeout ?? 10_000,
      keepalive: this.o.keepalive ?? 30,
      protocolVersion: this.protocolVersion,
      username: this.o.username,
      rejectUnauthorized: this.o.rejectUnauthorized ?? true,
      writeCache: false, // no 7 MiB packet-id Buffer table (see sources/mqtt.ts, issue 14)
      ...stripUndefined(this.secrets),
    };
    const client = mqtt.connect(mqttConnectOptions(url, opts));
    this.client = client;
    // Events of a client this transport has let go of (end(), a newer connect) are not reported.
    const mine = () => this.client === client;
    client.on('connect', () => {
      if (mine()) this.emit('connect');
    });
    client.on('error', (err) => {
      if (!mine()) return;
      const code = (err as { code?: string | number }).code;
      this.emit(
        'error',
        err,
        typeof code === 'string' ? code : code === undefined ? 'unknown' : `connack_${code}`,
      );
    });
    client.on('close', () => {
      if (mine()) this.emit('close', null);
    });
    client.on('message', (topic, payload) => {
      if (mine()) this.emit('message', topic, payload);
    });
  }

  /** Lets go of the current client (forced end, not awaited); returns it. */
  private end(): MqttClient | null {
    const c = this.client;
    this.client = null;
    c?.end(true);
    return c;
  }

  async disconnect(): Promise<void> {
    const c = this.end();
    if (c) await c.endAsync(true).catch(() => undefined);
  }

  publish(
    topic: string,
    payload: Buffer | string,
    o: TransportPublishOptions,
    done: (err?: Error) => void,
  ): void {
    const client = this.client;
    if (!client) {
      done(new Error('not connected'));
      return;
    }
    const opts: IClientPublishOptions = { qos: o.qos };
    if (o.retain) opts.retain = true;
    if (o.contentType !== undefined && this.protocolVersion === 5)
      opts.properties = { contentType: o.contentType };
    client.publish(topic, payload, opts, (err) => done(err));
  }

  async subscribe(topic: string): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('not connected');
    const granted = await client.subscribeAsync(topic, { qos: 1 });
    // SUBACK 128 (MQTT 3.1.1) / >= 0x80 (MQTT 5): the broker refused (its ACL).
    if (granted.some((g) => g.qos > 2)) throw new Error(`subscription to ${topic} refused by the broker`);
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.client?.unsubscribeAsync(topic);
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
