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
    // The runtime's health view (plain fields), not the whole /status built per poll.
    health: () => {
      const h = agent.health();
      return {
        sources: h.sources.map((s) => ({ name: s.name, state: s.state, lastError: s.lastError })),
        uplink:
          h.uplinkConnected === null
            ? { configured: false, connected: false }
            : { configured: true, connected: h.uplinkConnected, lastError: h.uplinkLastError },
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
