// Embedded MQTT broker source (SPEC.md 2, `type: mqtt-broker`): sensors publish to the gateway itself
// (aedes v1 on a plain TCP listener); every PUBLISH on a topic matching `topicPattern` becomes a frame.
//
// Ack timing ("keep what you accepted"): a sensor that got a PUBACK never resends, so the PUBACK for a
// QoS 1 frame must wait until the runtime checkpointed it (frame.ack()). In aedes v1
// (lib/handlers/publish.js) a QoS 1 PUBLISH runs `authorizePublish` and then writes the PUBACK *before*
// forwarding. Holding authorizePublish's callback would delay the PUBACK, but aedes reads the next socket
// chunk only when every packet of the current one is handled (lib/client.js nextBatch), so one held
// callback blocks that sensor's connection (PINGREQ included) for a whole checkpoint interval: a sensor
// sending one message per TCP segment would get one message per checkpoint through.
// So for QoS 1, authorizePublish downgrades the packet to QoS 0 before calling back (aedes then skips
// its PUBACK and forwards it at QoS 0 to any local subscriber) and frame.ack() writes the PUBACK itself,
// in arrival order per connection (ack-queue.ts) and only on the connection the PUBLISH came in on; after
// a disconnect the ack is dropped and the sensor's client resends (DUP) on reconnect: at-least-once.
// QoS 2 (rare on sensors) keeps aedes's flow and holds the authorizePublish callback until frame.ack().
//
// maxPacketSize: aedes has no packet size limit; a PUBLISH whose payload exceeds it is dropped as
// `too_long` (and acknowledged). The bytes were already read, so this bounds what reaches the runtime,
// not the parser's memory.
import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { Aedes, type Client } from 'aedes';
import { readSecretFile } from '../../shared/config-file.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import { compileTopicPattern } from '../../shared/topics.ts';
import { AckQueue, messageHash } from './ack-queue.ts';
import { Backoff, RetryTimer } from './backoff.ts';
import type { RawFrame, Source, SourceContext, SourceHooks, SourceState, SourceStatus } from './source.ts';

export interface MqttBrokerSourceOptions {
  name: string;
  /** `host:port`; port 0 picks a free port (tests), see `address()`. */
  listen: string;
  topicPattern: string;
  /** When set, sensors must connect with this username and the password from `passwordFile`. */
  username?: string;
  passwordFile?: string;
  /** Largest accepted payload, bytes. [65536] */
  maxPacketSize?: number;
  /** How long after a restart a sensor's re-send can be matched to the last checkpoint, ms. [30000] */
  redeliveryGraceMs?: number;
  /** Backoff for re-listening when the port is taken, ms. [500, 30000] */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

type PausableClient = Client & { pause(): void; resume(): void };

export class MqttBrokerSource implements Source {
  readonly type = 'mqtt-broker' as const;
  readonly name: string;
  private broker: Aedes | null = null;
  private server: net.Server | null = null;
  private onFrame: (f: RawFrame) => void = () => {};
  private hooks: SourceHooks = {};
  private state: SourceState = 'stopped';
  private lastError: string | undefined;
  private framesIn = 0;
  private reconnects = 0;
  /** RawFrame.keys from the last checkpoint before a restart (restoreDelivered); each matches once. */
  private readonly deliveredBefore = new Set<string>();
  private skippedRedeliveries = 0;
  private paused = false;
  private password: Buffer | null = null;
  private readonly badFrames: Record<string, number> = {};
  private readonly clients = new Set<PausableClient>();
  private readonly acks = new WeakMap<Client, AckQueue>();
  private readonly match: (topic: string) => Record<string, string> | null;
  private readonly retry: RetryTimer;
  private readonly warn: RateLimitedLog;
  private readonly host: string;
  private readonly port: number;

  constructor(
    private readonly opts: MqttBrokerSourceOptions,
    private readonly ctx: SourceContext,
  ) {
    this.name = opts.name;
    this.match = compileTopicPattern(opts.topicPattern);
    const m = /^(.*):(\d+)$/.exec(opts.listen);
    if (!m)
      throw new EdgeflowError(
        'CONFIG_INVALID',
        `source ${opts.name}: listen must be host:port, got ${opts.listen}`,
      );
    this.host = m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0';
    this.port = Number(m[2]);
    this.retry = new RetryTimer(
      ctx.clock,
      new Backoff({ minMs: opts.reconnectMinMs ?? 500, maxMs: opts.reconnectMaxMs ?? 30_000 }),
    );
    this.warn = new RateLimitedLog(ctx.log, 1, 60_000);
  }

  async start(onFrame: (frame: RawFrame) => void, hooks: SourceHooks = {}): Promise<void> {
    this.onFrame = onFrame;
    this.hooks = hooks;
    this.state = 'starting';
    if (this.opts.passwordFile) {
      try {
        this.password = Buffer.from(readSecretFile(this.opts.passwordFile));
      } catch (e) {
        throw new EdgeflowError(
          'CONFIG_INVALID',
          `source ${this.name}: cannot read passwordFile ${this.opts.passwordFile}`,
          { cause: e },
        );
      }
    }
    const broker = await Aedes.createBroker({
      id: `edgeflow-${this.name}`,
      authenticate: (_client, username, password, done) => done(null, this.authenticate(username, password)),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
    });
    this.broker = broker;
    broker.on('client', (c) => {
      const pc = c as PausableClient;
      // aedes resumes a client itself at the end of its CONNECT flow (lib/handlers/connect.js
      // emptyQueue), which would undo a pause() that came in between: gate its resume on ours.
      const resume = pc.resume.bind(pc);
      pc.resume = () => {
        if (!this.paused) resume();
      };
      this.clients.add(pc);
      // 'clientDisconnect' is not emitted for every way a connection ends; the socket's close is.
      pc.conn.once('close', () => this.clients.delete(pc));
      if (this.paused) pc.pause();
    });
    broker.on('clientDisconnect', (c) => this.clients.delete(c as PausableClient));
    broker.on('clientError', (_c, err) =>
      this.warn.warn(
        `broker_client_error:${this.name}`,
        { err: err.message },
        'embedded broker: client error',
      ),
    );
    await this.listen();
  }

  private authenticate(username: string | undefined, password: Buffer | undefined): boolean {
    if (this.opts.username === undefined) return true;
    if (username !== this.opts.username) return false;
    if (!this.password) return true; // username only (no passwordFile configured)
    if (!password) return false;
    return password.length === this.password.length && timingSafeEqual(password, this.password);
  }

  private listen(): Promise<void> {
    return new Promise((resolve) => {
      if (this.state === 'stopped' || !this.broker) return resolve();
      const server = net.createServer(this.broker.handle);
      server.once('error', (err: NodeJS.ErrnoException) => {
        this.state = 'down';
        this.lastError = `${err.code ?? 'ERROR'}: ${err.message}`;
        const inMs = this.retry.schedule(() => {
          this.reconnects++;
          void this.listen();
        });
        this.warn.warn(
          `broker_listen:${this.name}`,
          { listen: this.opts.listen, err: this.lastError, retryInMs: inMs },
          'embedded broker cannot listen; retrying',
        );
        resolve();
      });
      server.listen(this.port, this.host, () => {
        if (this.state === 'stopped') {
          server.close();
          return resolve();
        }
        this.server = server;
        this.state = 'up';
        this.lastError = undefined;
        this.retry.backoff.reset();
        this.ctx.log.info({ listen: this.address() }, 'embedded broker listening');
        resolve();
      });
    });
  }

  /** The bound address (`host:port`), e.g. to learn the port after listening on port 0. */
  address(): string | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? `${a.address}:${a.port}` : undefined;
  }

  private authorizePublish(
    client: Client | null,
    packet: { topic: string; payload: Buffer | string; qos: 0 | 1 | 2; messageId?: number },
    cb: (err?: Error | null) => void,
  ): void {
    if (!client) {
      cb(); // the broker's own publishes ($SYS, wills)
      return;
    }
    if (packet.topic.startsWith('$')) {
      cb(new Error('publishing to $ topics is not allowed'));
      return;
    }
    const fields = this.match(packet.topic);
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    let ack: (() => void) | undefined;
    let key: string | undefined;
    if (packet.qos === 1 && packet.messageId !== undefined) {
      const q = this.queueFor(client);
      const entry = q.push(packet.messageId, 0, '', EMPTY);
      packet.qos = 0; // aedes writes no PUBACK for QoS 0; ack() writes it, in order (see header)
      ack = () => q.ack(entry);
      cb();
      key = `${packet.messageId}:${messageHash(packet.topic, payload, client.id)}`;
      if (this.deliveredBefore.delete(key)) {
        // A sensor re-sending a message whose reading is already in the checkpoint of the agent process
        // before a crash (the PUBACK died with it): acknowledge it, do not count it again. The DUP flag is
        // not required: mqtt.js (5.x) re-sends its in-flight messages without it. The keys are only kept
        // for `redeliveryGraceMs` after they were restored (re-sends come right after reconnecting) and
        // match once, so a new message can only be mistaken for one if it reuses the packet id of a
        // message in the last checkpoint, from the same client id, with the same topic and payload, in
        // that time.
        this.skippedRedeliveries++;
        ack();
        return;
      }
    } else if (packet.qos === 2) {
      let done = false;
      ack = () => {
        if (!done) cb();
        done = true;
      };
    } else cb();
    if (!fields || payload.length > (this.opts.maxPacketSize ?? 65536)) {
      this.bad(fields ? 'too_long' : 'topic_mismatch');
      ack?.(); // accepted and dropped: a resend would be dropped again
      return;
    }
    const frame: RawFrame = { payload, receivedAt: this.ctx.clock.now() };
    const f: RawFrame['fields'] = {};
    if (fields.device !== undefined) f.device = fields.device;
    if (fields.metric !== undefined) f.metric = fields.metric;
    frame.fields = f;
    if (ack) frame.ack = ack;
    if (key) frame.key = key;
    this.framesIn++;
    this.onFrame(frame);
  }

  /** Keys (client id, packet id and content) of QoS 1 messages already in the last checkpoint. */
  restoreDelivered(keys: readonly string[]): void {
    for (const k of keys) this.deliveredBefore.add(k);
    const t = this.ctx.clock.setTimeout(
      () => this.deliveredBefore.clear(),
      this.opts.redeliveryGraceMs ?? 30_000,
    );
    (t as { unref?: () => void }).unref?.();
  }

  private queueFor(client: Client): AckQueue {
    let q = this.acks.get(client);
    if (!q) {
      q = new AckQueue(
        () => (client.connected && !client.closed ? 'send' : 'drop'),
        // PUBACK, success: 0x40, remaining length 2, packet id (MQTT 3.1.1 and 5).
        (e) => client.conn.write(Buffer.from([0x40, 0x02, e.messageId >> 8, e.messageId & 0xff])),
      );
      this.acks.set(client, q);
    }
    return q;
  }

  private bad(reason: string): void {
    this.badFrames[reason] = (this.badFrames[reason] ?? 0) + 1;
    this.hooks.onBadFrame?.(reason);
  }

  /** Stops reading from every sensor connection (aedes Client.pause), new ones included. */
  pause(): void {
    this.paused = true;
    for (const c of this.clients) c.pause();
  }

  resume(): void {
    this.paused = false;
    for (const c of this.clients) c.resume();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.retry.cancel();
    const server = this.server;
    const broker = this.broker;
    this.server = null;
    this.broker = null;
    if (server) {
      server.close();
      for (const c of this.clients) c.close();
    }
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    this.clients.clear();
  }

  status(): SourceStatus {
    return {
      name: this.name,
      type: this.type,
      state: this.state,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      framesIn: this.framesIn,
      reconnects: this.reconnects,
      listen: this.address() ?? this.opts.listen,
      clients: this.clients.size,
      paused: this.paused,
      badFrames: { ...this.badFrames },
      redeliveriesSkippedAfterRestart: this.skippedRedeliveries,
    };
  }
}

const EMPTY = Buffer.alloc(0);
