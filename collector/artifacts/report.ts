// Agent update state on the collector's /metrics (issue 16): one series per agent,
// edgeflow_collector_agent_update{agent, running, wanted, state} = 1, from the `update` field of each
// status an agent publishes (shared/release.ts). A new status replaces the agent's series, so the
// gauge answers "which version does each agent run, and where is its update". InfluxDB gets the same
// as fields of edgeflow_agent (shared/influx.ts statusPoint); /fleet reads status.update.
import { Gauge, type Registry } from 'prom-client';
import type { Status } from '../../shared/model.ts';

type Labels = { agent: string; running: string; wanted: string; state: string };

export class AgentUpdateMetrics {
  private readonly gauge: Gauge<keyof Labels>;
  private readonly last = new Map<string, Labels>();

  constructor(registry: Registry) {
    this.gauge = new Gauge({
      name: 'edgeflow_collector_agent_update',
      help: 'Agent version and over-the-air update state, from its last status (value always 1)',
      labelNames: ['agent', 'running', 'wanted', 'state'],
      registers: [registry],
    });
  }

  observe(agent: string, status: Status): void {
    const u = status.update;
    const labels: Labels = {
      agent,
      running: u?.running ?? status.version,
      wanted: u?.wanted ?? '',
      state: u?.state ?? 'unknown',
    };
    const prev = this.last.get(agent);
    if (prev && JSON.stringify(prev) === JSON.stringify(labels)) return;
    if (prev) this.gauge.remove(prev);
    this.gauge.set(labels, 1);
    this.last.set(agent, labels);
  }
}
