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
// Closed by default (issue 12 item 1; docs/security.md "Agent"): a sensor must log in, with its own
// credential from `credentials` (the collector's hashed file format, shared/credentials.ts) or the one
// shared `username` + `passwordFile`, unless `allowAnonymous: true` (warned at start). A sensor may
// publish only on topics matching `topicPattern` (with per-sensor credentials, only where `{device}` is
// its own id), subscribes to nothing, and nothing is retained or forwarded: the broker is a one-way
// door into the agent, not a message bus. Memory is bounded by maxConnections x 16 KB before login and
// maxConnections x maxPacketSize after: the packet size guard (shared/mqtt-packet-guard.ts) refuses a
// packet on its fixed header, before mqtt-packet buffers its body; a connection over the cap is closed
// at once; a connection that sends no CONNECT is closed after CONNECT_TIMEOUT_MS.
import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Counter } from 'prom-client';
import { AuthLimits, type AuthLimitsOptions } from '../../shared/auth-limits.ts';
import { readSecretFile } from '../../shared/config-file.ts';
import { CredentialStore } from '../../shared/credentials.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import { guardClientParser, type PacketSizeGuard } from '../../shared/mqtt-packet-guard.ts';
import { counterOn } from '../../shared/prom.ts';
import { compileTopicPattern } from '../../shared/topics.ts';
import { AckQueue, messageHash } from './ack-queue.ts';
import { Backoff, RetryTimer } from './backoff.ts';
import type { RawFrame, Source, SourceContext, SourceHooks, SourceState, SourceStatus } from './source.ts';

export interface MqttBrokerSourceOptions {
  name: string;
  /** `host:port`; port 0 picks a free port (tests), see `address()`. */
  listen: string;
  topicPattern: string;
  /** Per-sensor credentials (JSON, hashed; `edgeflow-agent add-sensor`): username = sensor id. */
  credentials?: string;
  /** One credential shared by every sensor: this username and the password in `passwordFile`. */
  username?: string;
  passwordFile?: string;
  /** Accept sensors without credentials (warned at start). [false] */
  allowAnonymous?: boolean;
  /** Largest accepted MQTT packet, bytes, refused on its header before it is buffered. [65536] */
  maxPacketSize?: number;
  /** Open connections at most; more are closed at once. [64] */
  maxConnections?: number;
  /** Password-check limits (shared/auth-limits.ts); tests shorten the window. */
  authLimits?: Partial<AuthLimitsOptions>;
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
  private store: CredentialStore | null = null;
  private readonly authLimits: AuthLimits;
  /** The sensor id each authenticated client logged in as (per-sensor credentials). */
  private readonly sensors = new WeakMap<Client, string>();
  private readonly sockets = new Set<net.Socket>();
  private readonly guards = new WeakMap<Client, { guard: PacketSizeGuard; max: number }>();
  /** Refused connections, logins, subscriptions and packets by reason (not frames: see bad()). */
  private readonly refusals: Record<string, number> = {};
  private readonly refusedTotal: Counter<'source' | 'reason'>;
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
    this.authLimits = new AuthLimits({ ...AUTH_LIMITS, ...opts.authLimits });
    this.refusedTotal = counterOn(
      ctx.metrics,
      'edgeflow_agent_broker_refused_total',
      'Embedded broker: connections, logins, subscriptions and packets refused, by reason',
      ['source', 'reason'],
    );
  }

  async start(onFrame: (frame: RawFrame) => void, hooks: SourceHooks = {}): Promise<void> {
    this.onFrame = onFrame;
    this.hooks = hooks;
    this.state = 'starting';
    this.loadCredentials();
    const broker = await Aedes.createBroker({
      id: `edgeflow-${this.name}`,
      connectTimeout: CONNECT_TIMEOUT_MS,
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          () => done(null, true),
          (err: AuthenticateError) => done(err, false),
        );
      },
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      // Sensors only publish: every subscription is refused (SUBACK 0x80 [MQTT-3.9.3-2]), nothing is
      // forwarded, so no sensor can read another's readings (`#`, `$SYS/#`).
      authorizeSubscribe: (_client, sub, cb) => {
        this.refused('subscribe');
        this.warn.warn(
          `broker_subscribe:${this.name}`,
          { topic: sub.topic },
          'embedded broker: subscription refused',
        );
        cb(null, null);
      },
      authorizeForward: () => null,
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

  /** Reads the sensor credentials (a failure is a configuration error) and warns when there are none. */
  private loadCredentials(): void {
    const { credentials, passwordFile } = this.opts;
    try {
      if (credentials !== undefined) {
        this.store = new CredentialStore(credentials);
        this.store.load();
      } else if (passwordFile !== undefined) {
        this.password = Buffer.from(readSecretFile(passwordFile));
      }
    } catch (e) {
      const key = credentials !== undefined ? 'credentials' : 'passwordFile';
      throw new EdgeflowError(
        'CONFIG_INVALID',
        `source ${this.name}: cannot read ${key} ${credentials ?? passwordFile}`,
        { cause: e },
      );
    }
    if (this.opts.allowAnonymous) {
      this.ctx.log.warn(
        { source: this.name, listen: this.opts.listen },
        'embedded broker accepts sensors WITHOUT credentials (allowAnonymous: true): anyone who can reach the port can inject readings',
      );
    }
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    const refuse = (code: number, reason: string): never => {
      this.refused(reason);
      // The username is not logged: a sensor that swapped username and password would log its secret.
      this.warn.warn(`broker_login:${this.name}`, { reason }, 'embedded broker: sensor login refused');
      throw Object.assign(new Error(`login refused: ${reason}`), { returnCode: code }) as AuthenticateError;
    };
    const { store, password: expected } = this;
    if (store === null && expected === null) {
      if (this.opts.allowAnonymous) return this.raiseLimit(client);
      return refuse(NOT_AUTHORIZED, 'no_credentials_configured'); // config.ts refuses this; a backstop
    }
    if (username === undefined || username === '' || password === undefined) {
      if (this.opts.allowAnonymous) return this.raiseLimit(client);
      return refuse(NOT_AUTHORIZED, 'no_credentials');
    }
    const user = username;
    const address = (client.conn as net.Socket).remoteAddress ?? 'unknown';
    const verdict = this.authLimits.check(user, address);
    if (verdict !== 'ok') return refuse(NOT_AUTHORIZED, 'throttled');
    let ok: boolean | null = false;
    if (store) {
      const secret = password.toString('utf8');
      ok = store.verifyCached(user, secret)
        ? true
        : store.has(user)
          ? await this.authLimits.run(() => store.verify(user, secret))
          : false;
    } else if (expected) {
      ok =
        user === this.opts.username &&
        password.length === expected.length &&
        timingSafeEqual(password, expected);
    }
    if (ok === null) return refuse(SERVER_UNAVAILABLE, 'busy');
    if (!ok) {
      this.authLimits.failed(user, address);
      return refuse(BAD_USERNAME_OR_PASSWORD, 'bad_credentials');
    }
    this.authLimits.succeeded(user);
    this.raiseLimit(client);
    if (store) {
      // aedes lets a CONNECT with a client id in use take that session over [MQTT-3.1.4-2]; with
      // per-sensor credentials that must not let one sensor disconnect another.
      const holder = (this.broker as unknown as { clients: Record<string, Client | undefined> }).clients[
        client.id
      ];
      const holderSensor = holder && holder !== client ? this.sensors.get(holder) : undefined;
      if (holderSensor !== undefined && holderSensor !== user)
        return refuse(NOT_AUTHORIZED, 'client_id_taken');
      this.sensors.set(client, user);
    }
  }

  /** Logged in: packets up to maxPacketSize from now on. */
  private raiseLimit(client: Client): void {
    const g = this.guards.get(client);
    g?.guard.setLimit(g.max);
  }

  /** One TCP connection: the connection cap, then the packet size guard, then aedes. */
  private handle(socket: net.Socket): void {
    const broker = this.broker;
    socket.on('error', () => {}); // reported by aedes; a socket error never escapes
    if (!broker || this.sockets.size >= (this.opts.maxConnections ?? 64)) {
      this.refused('max_connections');
      this.warn.warn(
        `broker_max_connections:${this.name}`,
        { max: this.opts.maxConnections ?? 64 },
        'embedded broker: connection refused, maxConnections reached',
      );
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const client = broker.handle(socket);
    // Before login a packet may be PRE_AUTH_MAX_PACKET at most (a CONNECT is small): what unauthenticated
    // connections can make the broker hold stays maxConnections x 16 KB, whatever maxPacketSize is.
    const max = this.opts.maxPacketSize ?? 65536;
    const guard = guardClientParser(client, Math.min(max, PRE_AUTH_MAX_PACKET), (v) => {
      this.refused(v.reason === 'too_large' ? 'packet_too_large' : 'malformed_packet');
      this.warn.warn(
        `broker_packet:${this.name}`,
        { reason: v.reason, size: v.size, max },
        'embedded broker: packet over maxPacketSize or malformed; connection closed before buffering it',
      );
      socket.destroy();
    });
    this.guards.set(client, { guard, max });
  }

  private listen(): Promise<void> {
    return new Promise((resolve) => {
      if (this.state === 'stopped' || !this.broker) return resolve();
      const server = net.createServer((socket) => this.handle(socket));
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
    packet: { topic: string; payload: Buffer | string; qos: 0 | 1 | 2; retain: boolean; messageId?: number },
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
    // Nothing is retained (issue 12: 100 x 1 MB retained messages were kept and replayed): aedes stores a
    // retained message after this hook, from this same packet object.
    packet.retain = false;
    let fields = this.match(packet.topic);
    const sensor = this.sensors.get(client);
    if (fields && sensor !== undefined && fields.device !== undefined && fields.device !== sensor) {
      // Per-sensor credentials: a sensor publishes its own readings only. Dropped and counted like a
      // topic outside the pattern (below), so the sensor does not re-send it.
      this.warn.warn(
        `broker_acl:${this.name}`,
        { sensor, device: fields.device },
        "embedded broker: publish for another sensor's device dropped",
      );
      fields = null;
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    let ack: (() => void) | undefined;
    let key: string | undefined;
    if (packet.qos === 1 && packet.messageId !== undefined) {
      const q = this.queueFor(client);
      const entry = q.push(packet.messageId, 0, '');
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
    const f: { device?: string; metric?: string } = {};
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

  private refused(reason: string): void {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    this.refusedTotal.inc({ source: this.name, reason });
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
      for (const sock of this.sockets) sock.destroy(); // connections that never logged in
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
      connections: this.sockets.size,
      refused: { ...this.refusals },
      paused: this.paused,
      badFrames: { ...this.badFrames },
      redeliveriesSkippedAfterRestart: this.skippedRedeliveries,
    };
  }
}

/** Largest packet before login, bytes: a CONNECT with credentials and a small will fits. */
const PRE_AUTH_MAX_PACKET = 16 * 1024;
/** A connection that has not sent its CONNECT by then is closed (aedes connectTimeout), ms. */
const CONNECT_TIMEOUT_MS = 10_000;
// MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2-3].
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;
/**
 * Password checks on a gateway: one scrypt (32 MiB; 50-100 ms on a server core, more on a Pi) at a time, 4 waiting, 5 failures
 * per sensor id and 20 per address in a minute, then refused without checking (shared/auth-limits.ts).
 */
const AUTH_LIMITS: AuthLimitsOptions = {
  failuresPerAgent: 5,
  failuresPerAddress: 20,
  windowMs: 60_000,
  concurrentChecks: 1,
  queuedChecks: 4,
};
