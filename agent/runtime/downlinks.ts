// Downlink subscriptions (fleet control, issue 15) held by the runtime rather than by one uplink: a
// reload that changes `uplink:` builds a new uplink, and the subscriptions move to it.
import type { DownlinkHandler, MqttUplink } from '../uplink/mqtt-uplink.ts';

export class Downlinks {
  private readonly byTopic = new Map<string, Set<DownlinkHandler>>();

  /** Adds `onMessage` for `topic`, on `uplink` now if there is one; returns the unsubscribe. */
  add(topic: string, onMessage: DownlinkHandler, current: () => MqttUplink | null): () => void {
    let set = this.byTopic.get(topic);
    if (!set) {
      set = new Set();
      this.byTopic.set(topic, set);
    }
    set.add(onMessage);
    current()?.subscribe(topic, onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0) this.byTopic.delete(topic);
      current()?.unsubscribe(topic, onMessage);
    };
  }

  /** Subscribes a new uplink to everything (before it starts). */
  attach(uplink: MqttUplink): void {
    for (const [topic, handlers] of this.byTopic) for (const h of handlers) uplink.subscribe(topic, h);
  }
}
