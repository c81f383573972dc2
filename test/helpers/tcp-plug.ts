// A TCP forwarder to `target` that a test can unplug (open connections cut, new ones refused) and plug
// back in on the same port: a real outage of a broker or database the test shares with others.
//
// A side that closes normally ends the other side (its last bytes still go through), as TCP does: a
// client's PUBACK + DISCONNECT written just before it closes must reach the broker, or the broker
// redelivers what the client had acknowledged and a test blames the client.
import { once } from 'node:events';
import { type AddressInfo, createServer, connect as netConnect, type Server, type Socket } from 'node:net';

export class TcpPlug {
  private server: Server | null = null;
  private readonly socks = new Set<Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  private forward(from: Socket, to: Socket): void {
    from.pipe(to); // from's end → to.end(), after what was written
    from.on('error', () => {
      from.destroy();
      to.destroy();
    });
    from.on('close', () => {
      this.socks.delete(from);
      if (!to.writableEnded) to.end();
    });
  }

  async up(): Promise<void> {
    const server = createServer((s) => {
      const t = netConnect(this.target.port, this.target.host);
      this.socks.add(s).add(t);
      this.forward(s, t);
      this.forward(t, s);
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Unplugged: every open connection is cut (no FIN, as a pulled cable) and the port refuses. */
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const x of this.socks) x.destroy();
    this.socks.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
