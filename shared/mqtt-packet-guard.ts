// mqtt-packet's parser (used by aedes) buffers a whole packet before it looks at it, and aedes v1 has
// no packet size option: a client announcing a 256 MB PUBLISH would make the broker buffer 256 MB.
// This guard follows the MQTT fixed header ([MQTT-2.2.3]: remaining length, 1..4 bytes, 7 bits each)
// across socket reads and reports the first packet larger than the limit, before it is buffered.

export type GuardVerdict = { ok: true } | { ok: false; reason: 'too_large' | 'malformed'; size?: number };

export class PacketSizeGuard {
  /** 0: expect fixed header byte; 1: reading remaining length; 2: skipping the body. */
  private state: 0 | 1 | 2 = 0;
  private length = 0;
  private multiplier = 1;
  private lenBytes = 0;
  private toSkip = 0;
  private failed: GuardVerdict | null = null;

  // The limit can change between packets: small before login, the configured maximum after (issue 12).
  constructor(public maxPacketSize: number) {}

  /** Changes the limit for the packets that follow (e.g. raised once a client has logged in). */
  setLimit(maxPacketSize: number): void {
    this.maxPacketSize = maxPacketSize;
  }

  private fail(v: GuardVerdict): GuardVerdict {
    this.failed = v;
    return v;
  }

  feed(buf: Uint8Array): GuardVerdict {
    if (this.failed) return this.failed;
    let i = 0;
    while (i < buf.length) {
      if (this.state === 2) {
        const n = Math.min(this.toSkip, buf.length - i);
        this.toSkip -= n;
        i += n;
        if (this.toSkip === 0) this.state = 0;
        continue;
      }
      if (this.state === 0) {
        i++; // packet type and flags
        this.state = 1;
        this.length = 0;
        this.multiplier = 1;
        this.lenBytes = 0;
        continue;
      }
      const b = buf[i++]!;
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lenBytes++;
      if (b & 0x80) {
        if (this.lenBytes >= 4) return this.fail({ ok: false, reason: 'malformed' });
        continue;
      }
      const total = 1 + this.lenBytes + this.length;
      if (total > this.maxPacketSize) return this.fail({ ok: false, reason: 'too_large', size: total });
      this.toSkip = this.length;
      this.state = this.toSkip === 0 ? 0 : 2;
    }
    return { ok: true };
  }
}

/**
 * Puts a PacketSizeGuard in front of an aedes client's parser (aedes 1.2 `client._parser`, mqtt-packet):
 * every socket read goes through the guard first, so a packet announcing more than `maxPacketSize`
 * bytes is refused on its fixed header, before its body is buffered. `onReject` closes the connection.
 * Throws when aedes no longer has `_parser`: the tests of both brokers fail then, not silently unguarded.
 */
export function guardClientParser(
  client: object,
  maxPacketSize: number,
  onReject: (verdict: Exclude<GuardVerdict, { ok: true }>) => void,
): PacketSizeGuard {
  const parser = (client as { _parser?: { parse: (b: Buffer) => unknown } })._parser;
  if (!parser) throw new Error('aedes internals changed: client._parser missing (packet size guard)');
  const guard = new PacketSizeGuard(maxPacketSize);
  const parse = parser.parse.bind(parser);
  parser.parse = (buf: Buffer) => {
    const v = guard.feed(buf);
    if (v.ok) return parse(buf);
    onReject(v);
    return 0;
  };
  return guard;
}
