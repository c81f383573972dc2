// The fleet's Prometheus metrics (issue 15, docs/fleet.md "What to watch"). Gauges are computed when
// scraped from the controller's state, so they can never drift from /fleet.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AgentRecord, Progress, Rollout } from './model.ts';

export interface FleetMetricsSource {
  readonly agentRecords: Iterable<AgentRecord>;
  readonly currentVersion: number;
  currentRollout(): Rollout | null;
  progress(r: Rollout): Progress;
}

export function createFleetMetrics(registry: Registry, self: FleetMetricsSource) {
  const registers = [registry];
  return {
    published: new Counter({
      name: 'edgeflow_collector_fleet_documents_published_total',
      help: 'Signed desired-state documents published on agent downlinks',
      registers,
    }),
    refused: new Counter({
      name: 'edgeflow_collector_fleet_apply_refused_total',
      help: 'Fleet directory loads refused (a document did not validate; nothing was sent)',
      registers,
    }),
    reports: new Counter({
      name: 'edgeflow_collector_fleet_reports_total',
      help: 'Fleet reports received in agent status, by state (changes only)',
      labelNames: ['state'],
      registers,
    }),
    agents: new Gauge({
      name: 'edgeflow_collector_fleet_agents',
      help: 'Agents per reported fleet version and state (state "none": never reported)',
      labelNames: ['version', 'state'],
      registers,
      collect() {
        this.reset();
        for (const a of self.agentRecords) {
          const r = a.report;
          this.inc({ version: String(r?.version ?? 0), state: r?.state ?? 'none' });
        }
      },
    }),
    rolloutVersion: new Gauge({
      name: 'edgeflow_collector_fleet_rollout_version',
      help: 'Version of the current rollout (0: none yet)',
      registers,
      collect() {
        this.set(self.currentVersion);
      },
    }),
    rolloutAgents: new Gauge({
      name: 'edgeflow_collector_fleet_rollout_agents',
      help: 'Agents of the current rollout by progress (applied, rejected, rolled_back, pending, sent, waiting)',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const r = self.currentRollout();
        if (!r) return;
        const p = self.progress(r);
        for (const s of ['applied', 'rejected', 'rolled_back', 'pending', 'sent', 'waiting'] as const)
          this.set({ state: s }, p[s]);
      },
    }),
    halted: new Gauge({
      name: 'edgeflow_collector_fleet_rollout_halted',
      help: '1 while the current rollout is halted (resume or rollback by command)',
      registers,
      collect() {
        this.set(self.currentRollout()?.state === 'halted' ? 1 : 0);
      },
    }),
  };
}
