// What the fleet controller needs from the running agent, and nothing more: the controller (policy)
// never touches the runtime or the uplink directly, so the runtime split (issue 13) only re-points the
// one adapter that implements this (agent/fleet/agent-host.ts).
import type { FleetReport } from '../../shared/fleet.ts';
import type { AgentConfig } from '../config.ts';

export interface FleetHealth {
  /** Every configured source and its state (`up` = open and reading). */
  sources: { name: string; state: string; lastError?: string | undefined }[];
  /** `configured: false` when the config has no uplink (then it does not count for health). */
  uplink: { configured: boolean; connected: boolean; lastError?: string | null | undefined };
}

/** The fields the controller adds to the agent's status (shared/model.ts statusSchema). */
export interface FleetStatusFields {
  labels?: Record<string, string>;
  fleet?: FleetReport;
}

export interface FleetHost {
  /**
   * Applies a validated configuration through the runtime's reload path: window/rule state kept where
   * the definition did not change, the outbox untouched. Rejects only when it could not be applied.
   */
  reload(config: AgentConfig): Promise<void>;
  health(): FleetHealth;
  /** Every payload received on the agent's downlink topic (`edgeflow/v1/{agent}/down`), in order. */
  onDownlink(handler: (payload: Buffer) => void): void;
  /** Merged into every status the agent publishes and serves. */
  statusFields(fields: () => FleetStatusFields): void;
  /** Publishes the retained status now (a no-op while the uplink is down: it is sent on connect). */
  publishStatus(): void;
}
