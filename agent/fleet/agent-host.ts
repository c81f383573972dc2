// The one adapter between the fleet controller and the runtime (agent/runtime/agent.ts): its reload,
// downlink, status-fields and publish entry points (issue 13). Reloads are serialised by the runtime.
import { downlinkTopic } from '../../shared/topics.ts';
import type { Agent } from '../runtime/agent.ts';
import type { FleetHost } from './host.ts';

export function agentHost(agent: Agent, agentId: string): FleetHost {
  return {
    reload: async (config) => {
      const r = await agent.reload(config);
      if (!r.applied) throw new Error(`reload refused: ${r.reason}`);
    },
    health: () => {
      const st = agent.status() as {
        sources: Record<string, { state: string; lastError?: string }>;
        uplink: { connected: boolean; lastError: string | null } | null;
      };
      return {
        sources: Object.entries(st.sources).map(([name, s]) => ({
          name,
          state: s.state,
          lastError: s.lastError,
        })),
        uplink: st.uplink
          ? { configured: true, connected: st.uplink.connected, lastError: st.uplink.lastError }
          : { configured: false, connected: false },
      };
    },
    onDownlink: (handler) => {
      agent.subscribeDownlink(downlinkTopic(agentId), (_topic, payload) => handler(payload));
    },
    statusFields: (fields) => agent.setStatusFields(fields),
    publishStatus: () => {
      agent.publishStatusNow();
    },
  };
}
