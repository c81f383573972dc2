// The embedded MQTT broker (aedes v1, MQTT 3.1/3.1.1): listeners, authentication, ACLs, packet size
// limit. Policy lives in aedes' hooks; what a PUBLISH becomes is the ingest pipeline's business.
//
// Where the PUBACK comes from (aedes 1.2, lib/handlers/publish.js): handlePublish runs
// [authorizePublish, enqueuePublish] in series; enqueuePublish writes the QoS 1 PUBACK (QoS 2: PUBREC)
// and only then calls broker.publish(). So `authorizePublish` calling back late *is* "PUBACK after
// commit": we spool the batch inside the hook and call back after the SQLite commit. An error passed
// to the callback makes aedes destroy the connection (client._onError) - MQTT 3.1.1 has no negative
// PUBACK - so the agent reconnects and re-sends from its outbox.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { AuthLimits, type AuthLimitsOptions } from '../../shared/auth-limits.ts';
import type { CredentialStore } from '../../shared/credentials.ts';
import type { Logger } from '../../shared/log.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import { PacketSizeGuard } from '../../shared/mqtt-packet-guard.ts';
import { serverTlsOptions } from '../../shared/tls.ts';
import { AGENT_ID_RE, downlinkTopic, parseUplinkTopic, type UplinkKind } from '../../shared/topics.ts';
import type { CollectorConfig, ListenUrl } from '../config.ts';
import type { CollectorMetrics, RejectReason } from '../metrics.ts';

export interface BrokerOptions {
  listen: readonly ListenUrl[];
  tls?: { cert: string; key: string; ca?: string | undefined; requireClientCert: boolean } | undefined;
  maxPacketSize: number;
  /** Largest packet before the client has logged in: a CONNECT never needs more (issue 12, item 10). */
  preAuthMaxPacketSize: number;
  /** Open connections in all (also each listener's server.maxConnections, so TLS handshakes count). */
  maxConnections: number;
  /** Open connections that have not logged in yet: with preAuthMaxPacketSize, bounds memory before login. */
  maxPendingConnections: number;
  /** Time to finish the TLS handshake and to send CONNECT. */
  connectTimeoutMs: number;
  authLimits: AuthLimitsOptions;
}

/**
 * The broker's options from the collector's `mqtt` config: one mapping for the single-node collector and
 * the cluster's ingest nodes, so a limit added to one (issue 12) cannot be missing from the other.
 */
export function brokerOptionsFrom(mqtt: CollectorConfig['mqtt']): BrokerOptions {
  return {
    listen: mqtt.listen,
    tls: mqtt.tls,
    maxPacketSize: mqtt.maxPacketSize,
    preAuthMaxPacketSize: mqtt.preAuthMaxPacketSize,
    maxConnections: mqtt.maxConnections,
    maxPendingConnections: mqtt.maxPendingConnections,
    connectTimeoutMs: mqtt.connectTimeout,
    authLimits: {
      failuresPerAgent: mqtt.authLimits.failuresPerAgent,
      failuresPerAddress: mqtt.authLimits.failuresPerAddress,
      windowMs: mqtt.authLimits.window,
      concurrentChecks: mqtt.authLimits.concurrentChecks,
      queuedChecks: mqtt.authLimits.queuedChecks,
    },
  };
}

export interface BrokerDeps {
  credentials: CredentialStore;
  metrics: CollectorMetrics;
  log: Logger;
  /** Called for every authorised uplink PUBLISH; the PUBACK is sent once the promise resolves. */
  onPublish: (agent: string, kind: UplinkKind, topic: string, payload: Buffer) => Promise<unknown>;
  /** Fleet control (issue 15): an agent's session came up / went away (online, last seen). */
  onAgentConnect?: (agent: string) => void;
  onAgentDisconnect?: (agent: string) => void;
}

// MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2-3].
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** What logs show of a username that is not a known agent id: never the text itself. */
export function redactUsername(username: string): string {
  return `sha256:${createHash('sha256').update(username).digest('hex').slice(0, 12)}`;
}

/** The agent id a verified client certificate names (its CN), if it is a valid id. */
function certAgentId(socket: Partial<TLSSocket>): string | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  const id = Array.isArray(cn) ? cn[0] : cn;
  return id && AGENT_ID_RE.test(id) ? id : undefined;
}

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class EdgeBroker {
  private aedes: Aedes | null = null;
  private servers: { url: string; server: Server }[] = [];
  private readonly agents = new WeakMap<Client, string>();
  private readonly sockets = new Set<Socket>();
  /** Connections that have not logged in yet (their packet size guard is still the small one). */
  private readonly pending = new Set<Socket>();
  private readonly guards = new WeakMap<Client, PacketSizeGuard>();
  /** ws' message size limit per WebSocket stream (ws-internal, checked at connection). */
  private readonly wsReceivers = new WeakMap<object, { _maxPayload?: number }>();
  /** Agent id from a verified client certificate, per WebSocket stream (wss:// with requireClientCert). */
  private readonly certAgents = new WeakMap<object, string>();
  /** Remote address per connection (a WebSocket stream has none of its own). */
  private readonly addresses = new WeakMap<object, string>();
  private readonly rl: RateLimitedLog;
  private readonly authLimits: AuthLimits;

  constructor(
    private readonly opts: BrokerOptions,
    private readonly deps: BrokerDeps,
  ) {
    this.rl = new RateLimitedLog(deps.log);
    this.authLimits = new AuthLimits(opts.authLimits);
  }

  private reject(reason: RejectReason, obj: Record<string, unknown>, msg: string): void {
    this.deps.metrics.rejected.inc({ reason });
    this.rl.warn(`reject:${reason}`, { reason, ...obj }, msg);
  }

  /** Creates the aedes instance and opens every listener; returns the bound addresses (port 0 resolved). */
  async start(): Promise<{ url: string; port: number }[]> {
    const { metrics, log } = this.deps;
    const aedes: Aedes = await Aedes.createBroker({
      id: 'edgeflow-collector',
      connectTimeout: this.opts.connectTimeoutMs,
      authenticate: (client, username, password, cb) => {
        this.authenticate(client, username, password).then(
          (agent) => {
            // aedes lets a CONNECT with a client id already in use take that session over
            // [MQTT-3.1.4-2]; that must not let agent A kick agent B off by using B's client id.
            const holder = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[
              client.id
            ];
            const holderAgent = holder && holder !== client ? this.agents.get(holder) : undefined;
            if (holderAgent !== undefined && holderAgent !== agent) {
              this.reject(
                'client_id_taken',
                { agent, holder: holderAgent, code: 'AUTH_FAILED' },
                'client id held by another agent',
              );
              return cb(authError(NOT_AUTHORIZED, 'client id in use by another agent'), false);
            }
            this.agents.set(client, agent);
            this.loggedIn(client);
            cb(null, true);
          },
          (err: AuthenticateError) => cb(err, false),
        );
      },
      authorizePublish: (client, packet, cb) => {
        if (!client) return cb(null); // the broker's own publishes ($SYS heartbeat)
        const agent = this.agents.get(client);
        const t = parseUplinkTopic(packet.topic);
        if (!agent) {
          this.reject('not_authenticated', { topic: packet.topic }, 'publish from an unauthenticated client');
          return cb(new Error('not authenticated'));
        }
        if (!t || t.agentId !== agent) {
          this.reject(
            'publish_acl',
            { agent, topic: packet.topic, code: 'NOT_AUTHORIZED' },
            "publish outside the agent's own topics; closing",
          );
          return cb(new Error(`agent ${agent} may not publish to ${packet.topic}`));
        }
        const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
        this.deps.onPublish(agent, t.kind, packet.topic, payload).then(
          () => cb(null),
          (err: Error) => {
            this.reject(
              'spool_error',
              { agent, err: err.message, code: 'STORE_WRITE_FAILED' },
              'could not spool a publish; closing so the agent re-sends',
            );
            cb(err);
          },
        );
      },
      authorizeSubscribe: (client, sub, cb) => {
        const agent = this.agents.get(client);
        if (agent && sub.topic === downlinkTopic(agent)) return cb(null, sub);
        this.reject(
          'subscribe_acl',
          { agent, topic: sub.topic, code: 'NOT_AUTHORIZED' },
          'subscription refused',
        );
        cb(null, null); // SUBACK 0x80 for this filter [MQTT-3.9.3]; the connection stays
      },
      // Nothing is forwarded to other clients except a client's own downlink.
      authorizeForward: (client, packet) => {
        const agent = this.agents.get(client);
        return agent && packet.topic === downlinkTopic(agent) ? packet : null;
      },
    });
    this.aedes = aedes;
    aedes.on('clientReady', (client) => {
      metrics.connectedAgents.set(aedes.connectedClients);
      const agent = this.agents.get(client);
      if (agent) this.deps.onAgentConnect?.(agent);
    });
    aedes.on('clientDisconnect', (client) => {
      metrics.connectedAgents.set(aedes.connectedClients);
      const agent = this.agents.get(client);
      if (agent) this.deps.onAgentDisconnect?.(agent);
    });
    aedes.on('connectionError', (_client, err) => {
      this.reject('protocol', { err: err.message }, 'connection error before CONNECT');
    });
    aedes.on('clientError', (client, err) => {
      this.rl.warn(
        'client_error',
        { clientId: client?.id, agent: client ? this.agents.get(client) : undefined, err: err.message },
        'client error',
      );
    });

    const bound: { url: string; port: number }[] = [];
    for (const l of this.opts.listen) {
      const onConn = (socket: Socket) => this.handle(socket, l, socket.remoteAddress);
      let server: Server;
      if (l.websocket) {
        // MQTT over WebSocket (subprotocol "mqtt"): the WebSocket is turned into a byte stream and handed
        // to aedes like a socket. wss:// takes the same TLS settings as tls://, requireClientCert included
        // (issue 12, item 12); a client certificate's CN is the agent id there too.
        const http = l.tls ? createHttpsServer(this.tlsOptions()) : createHttpServer();
        http.headersTimeout = this.opts.connectTimeoutMs;
        http.requestTimeout = this.opts.connectTimeoutMs;
        // Before login a WebSocket message may be no larger than a pre-auth packet (raised in loggedIn).
        const wss = new WebSocketServer({ server: http, maxPayload: this.opts.preAuthMaxPacketSize + 16 });
        wss.on('connection', (ws, req) => {
          const stream = createWebSocketStream(ws);
          const receiver = (ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
          if (typeof receiver?._maxPayload !== 'number') {
            throw new Error('ws internals changed: _receiver._maxPayload missing (pre-auth size limit)');
          }
          this.wsReceivers.set(stream, receiver);
          const tlsSocket = req.socket as Partial<TLSSocket>;
          const cn = tlsSocket.authorized ? certAgentId(tlsSocket) : undefined;
          if (cn) this.certAgents.set(stream, cn);
          this.handle(stream as unknown as Socket, l, req.socket.remoteAddress);
        });
        wss.on('error', (err) =>
          this.reject('protocol', { err: err.message, listener: l.url }, 'websocket error'),
        );
        if (l.tls) {
          http.on('tlsClientError', (err) =>
            this.reject('protocol', { err: err.message, listener: l.url }, 'TLS handshake failed'),
          );
        }
        server = http as unknown as Server;
      } else if (l.tls) {
        server = createTlsServer(this.tlsOptions(), onConn);
        server.on('tlsClientError', (err) =>
          this.reject('protocol', { err: err.message, listener: l.url }, 'TLS handshake failed'),
        );
      } else {
        server = createServer(onConn);
      }
      // Node closes connections past this before the TLS handshake ('drop', Node >= 18.6).
      server.maxConnections = this.opts.maxConnections;
      server.on('drop', (d?: { remoteAddress?: string }) =>
        this.reject(
          'connection_limit',
          { address: d?.remoteAddress, listener: l.url },
          'connection refused: mqtt.maxConnections reached',
        ),
      );
      server.listen(l.port, l.host);
      await once(server, 'listening');
      this.servers.push({ url: l.url, server });
      const port = (server.address() as AddressInfo).port;
      bound.push({ url: l.url.replace(/:\d+$/, `:${port}`), port });
      log.info({ listener: l.url, port }, 'mqtt listener up');
    }
    return bound;
  }

  /**
   * TLS settings of tls:// and wss:// listeners. TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE suites only
   * (forward secrecy: issue 12, item 12; Node's default list also offers RSA key exchange, e.g.
   * AES256-GCM-SHA384, through "HIGH"). The same list as Mozilla's "intermediate" profile minus DHE.
   */
  private tlsOptions() {
    const t = this.opts.tls;
    if (!t) throw new Error('a TLS listener needs mqtt.tls'); // config.ts refuses this earlier
    return {
      ...serverTlsOptions(t),
      ca: t.ca ? readFileSync(t.ca) : undefined,
      requestCert: t.requireClientCert,
      rejectUnauthorized: t.requireClientCert,
      handshakeTimeout: this.opts.connectTimeoutMs,
    };
  }

  /** A client logged in: it leaves the pending set and may send packets up to maxPacketSize. */
  private loggedIn(client: Client): void {
    this.pending.delete(client.conn as Socket);
    const guard = this.guards.get(client);
    guard?.setLimit(this.opts.maxPacketSize);
    const receiver = this.wsReceivers.get(client.conn);
    if (receiver) receiver._maxPayload = this.opts.maxPacketSize + 16;
  }

  private handle(socket: Socket, l: ListenUrl, address: string | undefined): void {
    const aedes = this.aedes;
    if (!aedes) return void socket.destroy();
    if (
      this.sockets.size >= this.opts.maxConnections ||
      this.pending.size >= this.opts.maxPendingConnections
    ) {
      this.reject(
        'connection_limit',
        { address, open: this.sockets.size, pending: this.pending.size },
        'connection refused: mqtt.maxConnections or mqtt.maxPendingConnections reached',
      );
      socket.on('error', () => {});
      return void socket.destroy();
    }
    this.addresses.set(socket, address ?? 'unknown');
    this.deps.metrics.connections.inc({
      listener: l.websocket ? (l.tls ? 'wss' : 'ws') : l.tls ? 'tls' : 'tcp',
    });
    this.sockets.add(socket);
    this.pending.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.pending.delete(socket);
    });
    socket.on('error', () => {}); // reported by aedes; never let a socket error escape
    const client = aedes.handle(socket) as Client & { _parser?: { parse: (b: Buffer) => unknown } };
    // Enforce maxPacketSize on the fixed header, before mqtt-packet buffers the body (packet-guard.ts).
    // `_parser` is aedes-internal; test/collector and broker.test.ts fail if that ever changes.
    const parser = client._parser;
    if (!parser) throw new Error('aedes internals changed: client._parser missing (packet size guard)');
    const guard = new PacketSizeGuard(this.opts.preAuthMaxPacketSize);
    this.guards.set(client, guard);
    const parse = parser.parse.bind(parser);
    parser.parse = (buf: Buffer) => {
      const v = guard.feed(buf);
      if (v.ok) return parse(buf);
      this.reject(
        v.reason === 'too_large' ? 'packet_too_large' : 'protocol',
        { agent: this.agents.get(client), size: v.size, max: guard.maxPacketSize },
        'packet over mqtt.maxPacketSize or malformed; closing',
      );
      socket.destroy();
      return 0;
    };
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<string> {
    const conn = client.conn as Socket & Partial<TLSSocket>;
    // Client certificate (tls:// or wss:// with requireClientCert): the agent id is the certificate's CN.
    const id =
      this.certAgents.get(conn) ?? (conn.encrypted && conn.authorized ? certAgentId(conn) : undefined);
    if (id) {
      if (username !== undefined && username !== id) {
        this.reject(
          'cert_mismatch',
          { username: redactUsername(username), cn: id, code: 'AUTH_FAILED' },
          'username differs from the certificate CN',
        );
        throw authError(NOT_AUTHORIZED, 'username does not match certificate');
      }
      return id;
    }
    if (username === undefined || username === '' || password === undefined) {
      this.reject(
        'no_credentials',
        { clientId: client.id, code: 'AUTH_FAILED' },
        'connection without credentials refused',
      );
      throw authError(NOT_AUTHORIZED, 'credentials required');
    }
    if (!AGENT_ID_RE.test(username)) {
      this.reject('bad_username', { code: 'AUTH_FAILED' }, 'username is not an agent id');
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad username or password');
    }
    const secret = password.toString('utf8');
    const creds = this.deps.credentials;
    // A secret verified before is checked without scrypt, and so without the limits below: an attacker
    // locking an agent id out does not lock out the agent once it has connected.
    if (creds.verifyCached(username, secret)) {
      this.authLimits.succeeded(username);
      return username;
    }
    const address = this.addresses.get(conn) ?? 'unknown';
    // A username that is no known agent id may be a secret typed in the wrong field (issue 12, item 12):
    // logs name it by a short hash only.
    const known = creds.has(username);
    const who = known ? { agent: username } : { username: redactUsername(username) };
    const verdict = this.authLimits.reserve(username, address);
    if (verdict !== 'ok') {
      this.reject(
        'auth_throttled',
        { ...who, address, why: verdict, code: 'AUTH_FAILED' },
        'too many failed or pending password checks: refused without checking',
      );
      throw authError(NOT_AUTHORIZED, 'too many failed attempts; try later');
    }
    // Unknown ids cost nothing to refuse, but count as failures like wrong passwords.
    let ok: boolean | null = false;
    try {
      if (known) ok = await this.authLimits.run(() => creds.verify(username, secret));
    } finally {
      this.authLimits.settle(username, address, ok);
    }
    if (ok === null) {
      this.reject(
        'auth_busy',
        { ...who, address, code: 'AUTH_FAILED' },
        'password checks queue full: refused as server unavailable',
      );
      throw authError(SERVER_UNAVAILABLE, 'server busy; try later');
    }
    if (!ok) {
      this.reject(
        'bad_password',
        { ...who, address, code: 'AUTH_FAILED' },
        'wrong password or unknown agent',
      );
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad username or password');
    }
    return username;
  }

  /**
   * Publishes from the collector itself (client null: authorizePublish lets it through; no agent can
   * publish on a downlink, parseUplinkTopic refuses `down`), retained at QoS 1 so an agent that is
   * offline gets it when it subscribes again. Resolves once aedes has stored and forwarded it.
   */
  publishRetained(topic: string, payload: Buffer): Promise<void> {
    const a = this.aedes;
    if (!a) return Promise.reject(new Error('broker not started'));
    return new Promise((resolve, reject) =>
      a.publish({ cmd: 'publish', topic, payload, qos: 1, retain: true, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  /** Open TCP/TLS connections, authenticated or not. */
  get connections(): number {
    return this.sockets.size;
  }

  get connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** Stops listening, drops every connection (held PUBACKs are never sent; agents re-send) and closes aedes. */
  async close(): Promise<void> {
    for (const { server } of this.servers) server.close();
    for (const s of this.sockets) s.destroy();
    await Promise.all(
      this.servers.map(({ server }) => (server.listening ? once(server, 'close') : undefined)),
    );
    this.servers = [];
    const a = this.aedes;
    this.aedes = null;
    if (a) await new Promise<void>((resolve) => a.close(() => resolve()));
  }
}
