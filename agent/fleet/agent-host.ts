// The one adapter between the fleet controller and today's runtime (agent/runtime/agent.ts): when the
// runtime is split (issue 13), only this file is re-pointed at the new reload / health / downlink /
// status entry points.
import type { Agent } from '../runtime/agent.ts';
import type { FleetHost } from './host.ts';

export function agentHost(agent: Agent): FleetHost {
  // Agent.reload awaits sources and the uplink; two at once (a document and a SIGHUP) would interleave.
  let reloads: Promise<void> = Promise.resolve();
  return {
    reload: (config) => {
      const next = reloads.then(() => agent.reload(config));
      reloads = next.catch(() => undefined);
      return next;
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
    onDownlink: (handler) => agent.onDownlink(handler),
    statusFields: (fields) => agent.extendStatus(fields),
    publishStatus: () => agent.publishStatusNow(),
  };
}
