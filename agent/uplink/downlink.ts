// Downlink routing (collector → agent, e.g. fleet control on `edgeflow/v1/{agent}/down`): handlers by
// exact topic. The subscriptions belong to a connection (clean session), so the runner asks for
// `topics()` again after every connect.
import type { Logger } from '../../shared/log.ts';

/** A downlink message handler: the topic it came on and its payload. */
export type DownlinkHandler = (topic: string, payload: Buffer) => void;

export class DownlinkRouter {
  private readonly byTopic = new Map<string, Set<DownlinkHandler>>();

  constructor(private readonly log: Logger) {}

  /** Adds a handler; true when the topic is new (the caller subscribes on the current connection). */
  add(topic: string, h: DownlinkHandler): boolean {
    const set = this.byTopic.get(topic);
    if (set) {
      set.add(h);
      return false;
    }
    this.byTopic.set(topic, new Set([h]));
    return true;
  }

  /** Removes a handler; true when it was the topic's last (the caller unsubscribes). */
  remove(topic: string, h: DownlinkHandler): boolean {
    const set = this.byTopic.get(topic);
    if (!set?.delete(h) || set.size > 0) return false;
    this.byTopic.delete(topic);
    return true;
  }

  topics(): IterableIterator<string> {
    return this.byTopic.keys();
  }

  /** A handler that throws is logged; the others still get the message. */
  dispatch(topic: string, payload: Buffer): void {
    for (const h of this.byTopic.get(topic) ?? []) {
      try {
        h(topic, payload);
      } catch (err) {
        this.log.error({ topic, err: (err as Error).message }, 'uplink: downlink handler failed');
      }
    }
  }
}
