// MQTT source: subscribes to an existing broker (SPEC.md 2, `type: mqtt`) with QoS 1 and a persistent
// session (`clean: false`, stable clientId `edgeflow-<agent>-<source>`), so messages that arrive while
// the agent is down or before a checkpoint are kept and redelivered by the broker.
//
// Ack timing (issue 4: "the broker must not get a PUBACK before the reading is checkpointed"):
// mqtt.js (v5, src/lib/handlers/publish.ts) processes incoming packets strictly one at a time and, for
// QoS 1, sends the PUBACK when `client.handleMessage(packet, cb)` calls `cb()` without error. Holding `cb`
// until the checkpoint would stall the whole connection (PINGRESP, SUBACK, the next PUBLISH) for up to a
// checkpoint interval per message. Instead we call `cb(DEFERRED)`: on an error mqtt.js skips its PUBACK
// and moves on to the next packet (publish.ts: `if (err) return done(err)`; `done` ignores it). The
// PUBACK is then written by `frame.ack()` ourselves, in arrival order (ack-queue.ts), on the same
// connection only.
//
// In-flight window: with MQTT 3.1.1 Mosquitto sends at most `max_inflight_messages` (default 20)
// un-acked messages, i.e. 20 frames per checkpoint interval. We connect with MQTT 5 and announce
// `receiveMaximum` (default 65535), which Mosquitto honours per client (measured: 300 un-acked messages
// delivered with v5, 20 with v3.1.1), so the runtime's checkpoint cadence is not a throughput cap.
//
// Reconnect without duplicates: acks pending when the connection drops are kept. If the broker resumes
// the session, it redelivers each un-acked PUBLISH with DUP and the same packet id [MQTT-4.4.0-1]; such a
// redelivery (same id, topic, payload) is matched to the frame the runtime already has, not delivered
// again, and its PUBACK goes out on the new connection once the runtime acks the original frame. If the
// session is gone (sessionPresent=false) or nothing is redelivered within `redeliveryGraceMs`, the old
// acks are dropped. A crash loses the pending acks and the broker redelivers: at-least-once, and the
// runtime's checkpoint makes it exactly-once for readings.
//
// pause(): the next PUBLISH is held inside handleMessage without calling back, which stops mqtt.js's
// packet loop and, through stream back-pressure, reading from the socket. Keep pauses shorter than the
// keepalive (PINGRESP is not processed while paused; mqtt.js would reconnect, which is safe).
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Timer } from '../../shared/clock.ts';
import { readSecretFile } from '../../shared/config-file.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import { mqttConnectOptions } from '../../shared/mqtt-url.ts';
import { compileTopicPattern } from '../../shared/topics.ts';
import { type AckDecision, type AckEntry, AckQueue, messageHash } from './ack-queue.ts';
import { Backoff, RetryTimer } from './backoff.ts';
import type { RawFrame, Source, SourceContext, SourceHooks, SourceState, SourceStatus } from './source.ts';

export interface MqttSourceOptions {
  name: string;
  /** Agent id, for the default clientId. */
  agentId: string;
  url: string;
  topics: string[];
  /** `plant/{device}/{metric}`: fills RawFrame.fields; messages on other topics are dropped as `topic_mismatch`. */
  topicPattern?: string;
  qos?: 0 | 1; // [1]
  clientId?: string; // [edgeflow-<agentId>-<name>]
  username?: string;
  passwordFile?: string;
  ca?: string;
  cert?: string;
  key?: string;
  /** Reconnect backoff bounds, ms. [500, 30000] */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** MQTT keepalive, seconds. [30] */
  keepaliveSec?: number;
  /** MQTT 5 receiveMaximum: un-acked messages the broker may send us. [65535] */
  maxInflight?: number;
  /** How long to wait for the broker's redelivery of frames pending at a disconnect, ms. [10000] */
  redeliveryGraceMs?: number;
  /** MQTT protocol; 5 falls back to 3.1.1 if the broker refuses it. [5 at QoS 1, 4 at QoS 0] */
  protocolVersion?: 4 | 5;
  /** Largest payload; larger messages are dropped as `too_long` (and acked). [1MB] */
  maxPayloadBytes?: number;
}

/**
 * Distinct topics whose `topicPattern` fields are remembered (topicFields). Past it the memo starts over:
 * a subscription over more topics than this pays the match again, never unbounded memory.
 */
const TOPIC_MEMO_MAX = 10_000;

const noLog = (): void => {};

/** Returned through handleMessage's callback so mqtt.js skips its automatic PUBACK (see header). */
const DEFERRED = Object.freeze(new Error('edgeflow: PUBACK deferred until checkpoint'));

export class MqttSource implements Source {
  readonly type = 'mqtt' as const;
  readonly name: string;
  private client: MqttClient | null = null;
  private onFrame: (f: RawFrame) => void = () => {};
  private hooks: SourceHooks = {};
  private state: SourceState = 'stopped';
  private lastError: string | undefined;
  private framesIn = 0;
  private reconnects = 0;
  private redelivered = 0;
  /** packet id → hash of messages a previous process checkpointed (restoreDelivered). */
  private deliveredBefore = new Map<number, string>();
  private skippedRedeliveries = 0;
  private connected = 0;
  private readonly badFrames: Record<string, number> = {};
  private readonly match: ((topic: string) => Record<string, string> | null) | null;
  /**
   * topic → its frames' `fields` (frozen: every frame of the topic shares it) or null (topic_mismatch).
   * A device publishes on the same few topics all its life: splitting each message's topic and building
   * two objects per frame was 7 % of the agent's per-message CPU at QoS 0 (issue 14, in-process profile).
   */
  private readonly topicFields = new Map<string, RawFrame['fields'] | null>();
  private readonly retry: RetryTimer;
  private readonly warn: RateLimitedLog;
  private readonly acks: AckQueue;
  /** Connection generation: +1 per CONNACK. */
  private gen = 0;
  /** The stream of the current generation (acks are written only there). */
  private stream: Writable | null = null;
  /** Entries of older generations still awaiting the broker's redelivery, by packet id. */
  private awaitingRedelivery = new Map<number, AckEntry>();
  private graceTimer: Timer | null = null;
  private paused = false;
  private held: { packet: IPublishPacket; cb: (e?: Error) => void } | null = null;
  private subscribed = false;
  /** Packet ids of the PUBACKs collected for one write on the next tick, and the stream they go to (writePuback). */
  private pubackIds: number[] = [];
  private pubackStream: Writable | null = null;
  /**
   * Arrival time of the socket chunk being handled, both clocks, read at its first message (deliver):
   * every message of one chunk arrived with one read from the socket. Stale again at the next chunk
   * (a 'data' listener put before mqtt.js's own), at resume() and at a new connection. A clock read costs
   * 80-150 ns on this 2-core VM; two per message were ~8 % of the agent's per-message CPU (issue 14).
   */
  private arrivalWall = 0;
  private arrivalMono = 0;
  private arrivalStale = true;
  private readonly chunkArrived = (): void => {
    this.arrivalStale = true;
  };
  /** PUBACKs were written on the current connection and the broker has not yet confirmed reading them (stop()). */
  private pubacksUnconfirmed = false;

  constructor(
    private readonly opts: MqttSourceOptions,
    private readonly ctx: SourceContext,
  ) {
    this.name = opts.name;
    this.match = opts.topicPattern ? compileTopicPattern(opts.topicPattern) : null;
    this.retry = new RetryTimer(
      ctx.clock,
      new Backoff({ minMs: opts.reconnectMinMs ?? 500, maxMs: opts.reconnectMaxMs ?? 30_000 }),
    );
    this.warn = new RateLimitedLog(ctx.log, 1, 60_000);
    this.acks = new AckQueue(
      (e) => this.decide(e),
      (e) => this.writePuback(e.messageId),
    );
  }

  get clientId(): string {
    return this.opts.clientId ?? `edgeflow-${this.opts.agentId}-${this.opts.name}`;
  }

  async start(onFrame: (frame: RawFrame) => void, hooks: SourceHooks = {}): Promise<void> {
    this.onFrame = onFrame;
    this.hooks = hooks;
    this.state = 'starting';
    const client = mqtt.connect(mqttConnectOptions(this.opts.url, this.clientOptions()));
    this.client = client;
    client.handleMessage = (packet, cb) => this.handleMessage(packet, cb);
    client.on('connect', (connack) => this.onConnect(client, connack.sessionPresent));
    client.on('error', (err) => {
      this.lastError = describeError(err);
      const code = (err as { code?: unknown }).code;
      // CONNACK "unacceptable/unsupported protocol version" (3.1.1: 1, MQTT 5: 132): the broker does
      // not speak MQTT 5 (aedes v1, older Mosquitto). Fall back to 3.1.1 once; the in-flight window is
      // then the broker's (Mosquitto max_inflight_messages).
      if (client.options.protocolVersion === 5 && (code === 1 || code === 132)) {
        client.options.protocolVersion = 4;
        client.options.properties = undefined;
        this.ctx.log.warn({ url: redactUrl(this.opts.url) }, 'broker refused MQTT 5; using MQTT 3.1.1');
      }
    });
    client.on('close', () => this.onClose(client));
    client.connect();
  }

  private clientOptions(): IClientOptions {
    const o = this.opts;
    const read = (what: string, path: string | undefined, f: (p: string) => string | Buffer) => {
      if (path === undefined) return undefined;
      try {
        return f(path);
      } catch (e) {
        throw new EdgeflowError('CONFIG_INVALID', `source ${o.name}: cannot read ${what} file ${path}`, {
          cause: e,
        });
      }
    };
    // MQTT 5 is for the acknowledged flow: its receiveMaximum lifts the broker's in-flight cap on un-acked
    // QoS 1 messages (header). At QoS 0 nothing is acknowledged and 3.1.1 keeps the session as well
    // (`clean: false`), while mqtt-packet parses an MQTT 5 PUBLISH's properties into an object of its own
    // per message: 3.1.1 at QoS 0 costs ~0.2 µs less per message (mqtt.js alone, 1.88 -> 1.65 µs; issue 14).
    const protocolVersion = o.protocolVersion ?? ((o.qos ?? 1) === 0 ? 4 : 5);
    return {
      manualConnect: true, // handleMessage must be in place before a resumed session redelivers
      clientId: this.clientId,
      clean: false,
      protocolVersion,
      // Session Expiry Interval: MQTT 5 ends a session at disconnect unless told otherwise; 0xFFFFFFFF = never.
      properties:
        protocolVersion === 5
          ? {
              sessionExpiryInterval: 0xffffffff,
              receiveMaximum: Math.min(65535, Math.max(1, o.maxInflight ?? 65535)),
            }
          : undefined,
      keepalive: o.keepaliveSec ?? 30,
      reconnectPeriod: 0, // our own jittered backoff (backoff.ts) instead of mqtt.js's fixed period
      connectTimeout: 10_000,
      resubscribe: false,
      username: o.username,
      password: read('password', o.passwordFile, readSecretFile),
      ca: read('ca', o.ca, (p) => readFileSync(p)),
      cert: read('cert', o.cert, (p) => readFileSync(p)),
      key: read('key', o.key, (p) => readFileSync(p)),
      // mqtt-packet otherwise builds, on the first packet it writes, a table of 65,536 two-byte Buffers
      // (one per packet id): 7 MiB of heap (65k Buffer objects of 104 B + the table) that a gateway
      // keeps for life, to save one 2-byte allocation per PUBACK. The flag is process-wide in
      // mqtt-packet; the uplink sets it too (issue 14, bench/footprint.ts).
      writeCache: false,
      // mqtt.js logs through `debug` several times per packet (handlePublish, its packet pump): with no
      // DEBUG set each call still costs a call with rest arguments and the `enabled` getter, ~2 % of the
      // agent's CPU at QoS 0 (issue 14, --cpu-prof of bench/nodered.ts). DEBUG=mqttjs* keeps its log.
      log: process.env.DEBUG ? undefined : noLog,
    };
  }

  private onConnect(client: MqttClient, sessionPresent: boolean): void {
    if (this.state === 'stopped' || this.client !== client) return;
    this.gen++;
    this.stream = client.stream;
    // Before mqtt.js's pipe: a chunk's messages are parsed and handled from its 'data' event on.
    this.arrivalStale = true;
    client.stream.prependListener('data', this.chunkArrived);
    this.pubacksUnconfirmed = false;
    if (this.connected++ > 0) this.reconnects++;
    this.state = 'up';
    this.lastError = undefined;
    this.retry.backoff.reset();
    this.retry.cancel();
    if (this.graceTimer) this.ctx.clock.clearTimeout(this.graceTimer);
    this.graceTimer = null;
    if (!sessionPresent) {
      // The broker has no session: nothing will be redelivered, old acks are meaningless.
      this.awaitingRedelivery.clear();
      this.acks.dropOlderThan(this.gen);
    } else if (this.awaitingRedelivery.size > 0) {
      const gen = this.gen;
      this.graceTimer = this.ctx.clock.setTimeout(() => {
        this.graceTimer = null;
        if (this.gen !== gen) return;
        this.awaitingRedelivery.clear();
        this.acks.dropOlderThan(gen);
      }, this.opts.redeliveryGraceMs ?? 10_000);
    }
    if (!sessionPresent || !this.subscribed) {
      const qos = this.opts.qos ?? 1;
      client.subscribe(this.opts.topics, { qos }, (err, granted) => {
        if (err) {
          this.lastError = describeError(err);
          this.warn.warn(`mqtt_subscribe:${this.name}`, { err: this.lastError }, 'mqtt subscribe failed');
          return;
        }
        const refused = (granted ?? []).filter((g) => g.qos >= 128);
        if (refused.length > 0) {
          this.lastError = `subscription refused: ${refused.map((g) => g.topic).join(', ')}`;
          this.warn.warn(
            `mqtt_subscribe:${this.name}`,
            { topics: refused.map((g) => g.topic) },
            'mqtt subscription refused',
          );
        } else this.subscribed = true;
      });
    }
    this.acks.flush();
    this.ctx.log.info(
      { url: redactUrl(this.opts.url), clientId: this.clientId, sessionPresent, reconnects: this.reconnects },
      'mqtt source connected',
    );
  }

  private onClose(client: MqttClient): void {
    if (this.client !== client) return;
    this.stream = null;
    this.arrivalStale = true;
    this.held = null; // its callback belongs to the dead connection; the broker redelivers the message
    // Entries not yet PUBACKed may be redelivered on the next connection: index them by packet id.
    for (const e of this.pendingEntries()) this.awaitingRedelivery.set(e.messageId, e);
    if (this.state === 'stopped') return;
    this.state = 'down';
    this.lastError ??= 'connection closed';
    const inMs = this.retry.schedule(() => {
      if (this.state !== 'stopped' && this.client === client) client.reconnect();
    });
    if (inMs !== null)
      this.warn.warn(
        `mqtt_down:${this.name}`,
        { url: redactUrl(this.opts.url), err: this.lastError, retryInMs: inMs },
        'mqtt source disconnected; retrying',
      );
  }

  private pendingEntries(): AckEntry[] {
    return this.acks.live().filter((e) => e.gen === this.gen);
  }

  restoreDelivered(keys: readonly string[]): void {
    for (const k of keys) {
      const i = k.indexOf(':');
      if (i > 0) this.deliveredBefore.set(Number(k.slice(0, i)), k.slice(i + 1));
    }
  }

  private handleMessage(packet: IPublishPacket, cb: (e?: Error) => void): void {
    if (this.paused) {
      this.held = { packet, cb };
      return;
    }
    this.process(packet, cb);
  }

  private process(packet: IPublishPacket, cb: (e?: Error) => void): void {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const topic = packet.topic;
    if (packet.qos === 0 || packet.messageId === undefined) {
      this.deliver(topic, payload, undefined);
      cb();
      return;
    }
    const id = packet.messageId;
    const hash = messageHash(topic, payload);
    const key = `${id}:${hash}`;
    const prior = this.awaitingRedelivery.get(id);
    if (prior) {
      this.awaitingRedelivery.delete(id);
      // Same packet id, topic and payload (by their hash: the entry does not keep the payload).
      if (packet.dup && prior.key === key) {
        // Redelivery of a frame the runtime already holds: re-home its ack to this connection.
        prior.gen = this.gen;
        this.redelivered++;
        cb(DEFERRED);
        this.acks.flush();
        return;
      }
      prior.dead = true; // the id now names another message
    }
    const entry = this.acks.push(id, this.gen, key);
    if (packet.dup && this.deliveredBefore.get(id) === hash) {
      // Redelivery of a message whose reading is already in the checkpoint of the process before a crash
      // (its PUBACK died with that process): acknowledge it, do not count it again.
      cb(DEFERRED);
      this.deliveredBefore.delete(id);
      this.skippedRedeliveries++;
      this.acks.ack(entry);
      return;
    }
    // Deliver first, then hand the packet back. Called from resume(), outside mqtt.js's stream write,
    // the callback makes mqtt.js parse and hand over the next PUBLISH synchronously, which then
    // overtook this frame (found by the Source conformance suite, issue 13: 0-4, 6, 7, 5, 8 ...).
    try {
      this.deliver(topic, payload, () => this.acks.ack(entry), key);
    } finally {
      cb(DEFERRED);
    }
  }

  private deliver(topic: string, payload: Buffer, ack: (() => void) | undefined, key?: string): void {
    if (payload.length > (this.opts.maxPayloadBytes ?? 1024 * 1024)) {
      this.bad('too_long', ack);
      return;
    }
    let fields: RawFrame['fields'] | null | undefined;
    if (this.match) {
      fields = this.fieldsOf(topic, this.match);
      if (fields === null) {
        this.bad('topic_mismatch', ack);
        return;
      }
    }
    this.framesIn++;
    if (this.arrivalStale) {
      this.arrivalWall = this.ctx.clock.now();
      this.arrivalMono = this.ctx.clock.monotonic();
      this.arrivalStale = false;
    }
    const frame: RawFrame = { payload, receivedAt: this.arrivalWall, receivedMono: this.arrivalMono };
    if (fields) frame.fields = fields;
    if (ack) frame.ack = ack;
    if (key) frame.key = key;
    this.onFrame(frame);
  }

  /** The `topicPattern` fields of a topic (null: it does not fit), remembered per topic (topicFields). */
  private fieldsOf(
    topic: string,
    match: (topic: string) => Record<string, string> | null,
  ): RawFrame['fields'] | null {
    let fields = this.topicFields.get(topic);
    if (fields === undefined) {
      const m = match(topic);
      if (m === null) fields = null;
      else {
        const f: { device?: string; metric?: string } = {};
        if (m.device !== undefined) f.device = m.device;
        if (m.metric !== undefined) f.metric = m.metric;
        fields = Object.freeze(f);
      }
      if (this.topicFields.size >= TOPIC_MEMO_MAX) this.topicFields.clear();
      this.topicFields.set(topic, fields);
    }
    return fields;
  }

  /** A message dropped by the source: counted, reported, and acked (nothing to wait for). */
  private bad(reason: string, ack: (() => void) | undefined): void {
    this.badFrames[reason] = (this.badFrames[reason] ?? 0) + 1;
    this.hooks.onBadFrame?.(reason);
    ack?.();
  }

  private decide(e: AckEntry): AckDecision {
    // A stream that is ending or closed (stop(), a dropped connection before 'close') takes no PUBACK:
    // it would be lost (issue 14: at shutdown they were written to closed sockets). The entry waits; if
    // the broker redelivers, the checkpointed key acknowledges it then (restoreDelivered).
    if (e.gen === this.gen && this.stream?.writable) return 'send';
    if (e.gen < this.gen && !this.awaitingRedelivery.has(e.messageId)) return 'drop';
    return 'wait';
  }

  /**
   * PUBACK, success: fixed header 0x40, remaining length 2, packet id (valid in MQTT 3.1.1 and 5). The
   * PUBACKs of one run of the event loop (a checkpoint commit acks all its frames at once) go out as ONE
   * Buffer written on the next tick (issue 14: a write per PUBACK, each its own syscall, was a large part
   * of what QoS 1 costs over QoS 0; and corking the stream instead still kept a Buffer and a write request
   * per PUBACK, ~150 B each: while a busy broker read slowly, 160,000 of them, 20 MiB, sat in the socket's
   * write queue during the 200k burst of bench/footprint.ts). Only the packet ids are kept until then.
   */
  private writePuback(messageId: number): void {
    const stream = this.stream;
    if (stream === null) return;
    if (this.pubackStream !== stream) {
      // A new connection since the batch began (not within one tick in practice): its ids first.
      this.flushPubacks();
      this.pubackStream = stream;
      process.nextTick(() => this.flushPubacks());
    }
    this.pubackIds.push(messageId);
  }

  private flushPubacks(): void {
    const stream = this.pubackStream;
    const ids = this.pubackIds;
    this.pubackStream = null;
    if (ids.length === 0) return;
    this.pubackIds = [];
    // A stream closed since the ids were collected (within this tick) takes no PUBACK: it is lost with its
    // connection, as a corked write was before and as one written just before a drop is.
    if (stream === null || !stream.writable) return;
    const buf = Buffer.allocUnsafe(ids.length * 4);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      buf[i * 4] = 0x40;
      buf[i * 4 + 1] = 0x02;
      buf[i * 4 + 2] = id >> 8;
      buf[i * 4 + 3] = id & 0xff;
    }
    stream.write(buf);
    this.pubacksUnconfirmed = true;
  }

  /**
   * A PINGREQ round trip before DISCONNECT: a broker handles one connection's packets in order, so its
   * PINGRESP means the PUBACKs written before were processed. Without it Mosquitto sometimes dropped the
   * last PUBACKs of a batch written just before the client closed (the Source conformance suite: the last
   * of three, written in one segment with the DISCONNECT, came back redelivered about 1 run in 15 on a
   * loaded machine). Bounded by `ms`; skipped while a PUBLISH is held (pause(): mqtt.js reads nothing then).
   */
  private confirmPubacks(c: MqttClient, ms: number): Promise<void> {
    const stream = this.stream;
    if (!this.pubacksUnconfirmed || this.held !== null || !stream?.writable || !c.connected)
      return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        c.off('packetreceive', onPacket);
        c.off('close', done);
        this.pubacksUnconfirmed = false;
        resolve();
      };
      const onPacket = (p: { cmd: string }) => {
        if (p.cmd === 'pingresp') done();
      };
      const timer = setTimeout(done, ms);
      c.on('packetreceive', onPacket);
      c.on('close', done);
      stream.write(Buffer.from([0xc0, 0x00])); // PINGREQ
    });
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.arrivalStale = true; // the held message is taken now: time read anew (processing-clock.ts)
    const h = this.held;
    this.held = null;
    if (h) this.process(h.packet, h.cb);
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.retry.cancel();
    if (this.graceTimer) this.ctx.clock.clearTimeout(this.graceTimer);
    const c = this.client;
    this.client = null;
    if (!c) return;
    this.flushPubacks(); // before DISCONNECT: acks of the final checkpoint may still wait for the next tick
    await this.confirmPubacks(c, 1000);
    // Graceful: PUBACKs already written go out before DISCONNECT; the session stays on the broker.
    await new Promise<void>((r) => {
      const t = setTimeout(() => c.end(true, {}, () => r()), 2000);
      c.end(false, {}, () => {
        clearTimeout(t);
        r();
      });
    });
  }

  status(): SourceStatus {
    return {
      name: this.name,
      type: this.type,
      state: this.state,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      framesIn: this.framesIn,
      reconnects: this.reconnects,
      clientId: this.clientId,
      pendingAcks: this.acks.size,
      redeliveredMatched: this.redelivered,
      redeliveriesSkippedAfterRestart: this.skippedRedeliveries,
      paused: this.paused,
      badFrames: { ...this.badFrames },
    };
  }
}

function describeError(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return code !== undefined ? `${String(code)}: ${err.message}` : err.message;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//[redacted]@');
}
