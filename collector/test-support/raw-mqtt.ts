// Raw MQTT over a TCP socket (mqtt-packet, no client library): for attacks a well-behaved client will not
// send (hundreds of CONNECTs at once, partial packets, garbage), with replies awaited as events.
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface RawConnection {
  socket: Socket;
  /** Resolves with the next packet the broker sends, or null when the connection closes first. */
  next(): Promise<Packet | null>;
  send(packet: Parameters<typeof mqttPacket.generate>[0]): void;
  closed: Promise<void>;
  destroy(): void;
}

export async function rawConnect(port: number, host = '127.0.0.1'): Promise<RawConnection> {
  const socket = netConnect(port, host);
  socket.on('error', () => {}); // resets are an expected outcome of these tests
  await once(socket, 'connect');
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const queue: Packet[] = [];
  const waiters: ((p: Packet | null) => void)[] = [];
  let ended = false;
  parser.on('packet', (p: Packet) => {
    const w = waiters.shift();
    if (w) w(p);
    else queue.push(p);
  });
  parser.on('error', () => socket.destroy());
  socket.on('data', (b) => parser.parse(b));
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      ended = true;
      for (const w of waiters.splice(0)) w(null);
      resolve();
    }),
  );
  return {
    socket,
    next: () => {
      const p = queue.shift();
      if (p) return Promise.resolve(p);
      if (ended) return Promise.resolve(null);
      return new Promise((resolve) => waiters.push(resolve));
    },
    send: (packet) => {
      if (!socket.destroyed) socket.write(mqttPacket.generate(packet));
    },
    closed,
    destroy: () => socket.destroy(),
  };
}

/** Sends one CONNECT and returns the CONNACK return code (null: closed without a CONNACK). */
export async function rawConnack(
  port: number,
  username: string | undefined,
  password: string | undefined,
  clientId = `raw-${Math.random().toString(36).slice(2)}`,
): Promise<number | null> {
  const c = await rawConnect(port);
  try {
    c.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId,
      keepalive: 30,
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password: Buffer.from(password) } : {}),
    });
    const p = await c.next();
    return p?.cmd === 'connack' ? (p.returnCode ?? null) : null;
  } finally {
    c.destroy();
  }
}
