// In-order, connection-aware acknowledgements for QoS 1 frames.
//
// [MQTT-4.6.0-2] a receiver sends PUBACKs in the order the PUBLISHes arrived. The runtime acks after each
// checkpoint, in arrival order, but a frame that needs no checkpoint (dropped by the source) may be acked
// earlier; the queue holds every PUBACK until all earlier frames are acked too.
//
// An ack is bound to the connection ("generation") its PUBLISH arrived on: a PUBACK written on a later
// connection could acknowledge a different message that reused the packet identifier. What happens to
// entries of an older generation is the owner's policy (`canSend`): send, wait (head-of-line) or drop.
import { hash } from 'node:crypto';

export interface AckEntry {
  readonly messageId: number;
  gen: number;
  acked: boolean;
  dead: boolean;
  /**
   * Identity of the message, to recognise its redelivery (MQTT source: `${packet id}:${messageHash}`, the
   * frame's RawFrame.key). Not the topic and payload themselves: an entry lives until its checkpoint, and
   * a payload Buffer is a view that keeps mqtt.js's whole socket chunk alive (issue 14: the 200k burst).
   */
  readonly key: string;
}

export type AckDecision = 'send' | 'wait' | 'drop';

export class AckQueue {
  private q: AckEntry[] = [];
  private head = 0;

  constructor(
    private readonly decide: (e: AckEntry) => AckDecision,
    private readonly send: (e: AckEntry) => void,
  ) {}

  push(messageId: number, gen: number, key: string): AckEntry {
    const e: AckEntry = { messageId, gen, acked: false, dead: false, key };
    this.q.push(e);
    return e;
  }

  /** Idempotent: the runtime may call a frame's ack once, a retry path may call it again. */
  ack(e: AckEntry): void {
    if (e.acked) return;
    e.acked = true;
    this.flush();
  }

  flush(): void {
    while (this.head < this.q.length) {
      const e = this.q[this.head]!;
      if (!e.dead) {
        if (!e.acked) break;
        const d = this.decide(e);
        if (d === 'wait') break;
        if (d === 'send') this.send(e);
        e.dead = true;
      }
      this.head++;
    }
    // Compact now and then instead of shift()ing (O(n) each) under high message rates.
    if (this.head > 1024 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
  }

  /** Entries not yet sent or dropped, oldest first. */
  live(): AckEntry[] {
    const out: AckEntry[] = [];
    for (let i = this.head; i < this.q.length; i++) if (!this.q[i]!.dead) out.push(this.q[i]!);
    return out;
  }

  get size(): number {
    return this.live().length;
  }

  /** Marks every live entry older than `gen` dead (their session is gone) and flushes. */
  dropOlderThan(gen: number): number {
    let n = 0;
    for (let i = this.head; i < this.q.length; i++) {
      const e = this.q[i]!;
      if (!e.dead && e.gen < gen) {
        e.dead = true;
        n++;
      }
    }
    this.flush();
    return n;
  }
}

/**
 * Identity of an MQTT message's content (RawFrame.key uses it with the packet id): a redelivery carries
 * the same packet id, topic and payload. `scope` separates senders (the embedded broker's client ids).
 */
export function messageHash(topic: string, payload: Buffer, scope = ''): string {
  // One-shot hash of the same bytes (issue 14: a Hash object and three update() calls per QoS 1 message
  // cost more than the digest); without a scope: the form checkpoints already hold.
  const head = scope === '' ? `${topic}\u0000` : `${scope}\u0000${topic}\u0000`;
  return hash('sha1', Buffer.concat([Buffer.from(head), payload]), 'base64url').slice(0, 22);
}
