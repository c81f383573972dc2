// A local aedes broker for uplink tests: port 0 (or a fixed port for a restart), optional TLS and
// authentication, records every uplink publish, can hold PUBACKs, and can be stopped and restarted on
// the same port to simulate a collector restart. In-process, loopback only.
import { once } from 'node:events';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { Aedes, type AedesOptions } from 'aedes';

export interface ReceivedBatch {
  topic: string;
  kind: string;
  retain: boolean;
  gzip: boolean;
  /** Parsed payload: a batch envelope, or the status object. */
  body: {
    v?: number;
    agent?: string;
    batch?: string;
    items?: { id: string; [k: string]: unknown }[];
    [k: string]: unknown;
  };
  /** Index of the broker instance (0, then 1 after a restart, ...). */
  life: number;
}

export interface TestBrokerOptions {
  port?: number;
  tls?: { key: Buffer; cert: Buffer };
  authenticate?: AedesOptions['authenticate'];
}

export class TestBroker {
  readonly received: ReceivedBatch[] = [];
  port = 0;
  private life = -1;
  private liveLife = -1;
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private held: (() => void)[] | null = null;

  private constructor(private readonly opts: TestBrokerOptions) {}

  static async start(opts: TestBrokerOptions = {}): Promise<TestBroker> {
    const b = new TestBroker(opts);
    b.port = opts.port ?? 0;
    await b.up();
    return b;
  }

  /** All items received on a kind's topic, in arrival order (duplicates included). */
  items(kind?: string): { id: string; kind: string; life: number; [k: string]: unknown }[] {
    return this.received
      .filter((r) => r.kind !== 'status' && (kind === undefined || r.kind === kind))
      .flatMap((r) => (r.body.items ?? []).map((i) => ({ ...i, kind: r.kind, life: r.life })));
  }

  /** From now on, PUBACKs are withheld until release(). */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const h = this.held ?? [];
    this.held = null;
    for (const cb of h) cb();
  }

  get heldCount(): number {
    return this.held?.length ?? 0;
  }

  async up(): Promise<void> {
    this.life++;
    const life = this.life;
    // Recorded and held in authorizePublish: aedes writes the QoS 1 PUBACK right after it (before the
    // `published` hook), so this is the point where the broker takes responsibility.
    const record = (packet: { topic: string; payload: Buffer | string; retain: boolean }) => {
      const parts = packet.topic.split('/');
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      const gzip = payload[0] === 0x1f && payload[1] === 0x8b;
      const text = (gzip ? gunzipSync(payload) : payload).toString('utf8');
      this.received.push({
        topic: packet.topic,
        kind: parts[3] ?? '',
        retain: packet.retain,
        gzip,
        body: JSON.parse(text),
        life,
      });
    };
    const aedes = await Aedes.createBroker({
      ...(this.opts.authenticate ? { authenticate: this.opts.authenticate } : {}),
      authorizePublish: (_client, packet, cb) => {
        if (this.liveLife !== life) return; // a stopped instance: never acknowledged
        record(packet);
        if (this.held) this.held.push(() => cb(null));
        else cb(null);
      },
    });
    const handler = (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      aedes.handle(s);
    };
    const server = this.opts.tls ? createTlsServer(this.opts.tls, handler) : createNetServer(handler);
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    const addr = server.address();
    if (addr && typeof addr === 'object') this.port = addr.port;
    this.aedes = aedes;
    this.server = server;
    this.liveLife = life;
  }

  /** Stops the broker hard (connections cut, nothing acknowledged any more); the port is kept for up(). */
  async down(): Promise<void> {
    const { server, aedes } = this;
    this.server = null;
    this.aedes = null;
    this.liveLife = -1;
    this.held = null; // withheld PUBACKs are never sent
    if (server) {
      const closed = new Promise((r) => server.close(r));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
    if (aedes) await new Promise<void>((r) => aedes.close(() => r()));
  }

  async close(): Promise<void> {
    await this.down();
  }
}

/** A TCP port with nothing listening on it (for failover tests). */
export async function deadPort(): Promise<number> {
  const s = createNetServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
