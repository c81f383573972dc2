// The agent's uplink, if configured, and what must outlive it: a reload that changes `uplink:` stops
// this uplink and starts a new one, and the downlink subscriptions (fleet control, issue 15) move to it.
import type { UplinkConfig } from '../config.ts';
import type { DownlinkHandler, MqttUplink, UplinkState } from '../uplink/mqtt-uplink.ts';

export class UplinkSlot {
  private current: MqttUplink | null = null;
  private readonly downlinks = new Map<string, Set<DownlinkHandler>>();

  constructor(private readonly make: (cfg: UplinkConfig) => MqttUplink) {}

  /** Builds, subscribes and starts the uplink (throws CONFIG_INVALID for unreadable credential/TLS files). */
  start(cfg: UplinkConfig): void {
    const up = this.make(cfg);
    for (const [topic, handlers] of this.downlinks) for (const h of handlers) up.subscribe(topic, h);
    this.current = up;
    up.start();
  }

  /** Stops it (after trying to drain for `drainMs`, if given). Items in flight stay in the outbox. */
  async stop(drainMs?: number): Promise<void> {
    const up = this.current;
    this.current = null;
    if (!up) return;
    if (drainMs !== undefined) await up.flush(drainMs).catch(() => undefined);
    await up.stop();
  }

  notify(committed?: { from: number; to: number }): void {
    this.current?.notify(committed);
  }

  state(): UplinkState | null {
    return this.current?.state() ?? null;
  }

  subscribe(topic: string, onMessage: DownlinkHandler): () => void {
    let set = this.downlinks.get(topic);
    if (!set) {
      set = new Set();
      this.downlinks.set(topic, set);
    }
    set.add(onMessage);
    this.current?.subscribe(topic, onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0) this.downlinks.delete(topic);
      this.current?.unsubscribe(topic, onMessage);
    };
  }

  publishStatusNow(): boolean {
    return this.current?.publishStatusNow() ?? false;
  }
}
