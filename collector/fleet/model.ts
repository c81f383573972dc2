// The collector's fleet state (issue 15): what it last sent each agent, what each agent reported, and
// the rollouts. Plain JSON-able records: FleetStore keeps them as rows, /fleet and the console show them.
import type { FleetReport } from '../../shared/fleet.ts';
import type { UpdateReport } from '../../shared/release.ts';

export interface SentDoc {
  version: number;
  hash: string;
  rollout: string;
  config: Record<string, unknown>;
  from: string[];
  /** The signed document as published (re-published byte for byte after a restart). */
  payload: string;
  sentAt: number;
}

export interface AgentRecord {
  id: string;
  labels: Record<string, string>;
  online: boolean;
  lastSeen: number | null;
  lastConnect: number | null;
  agentVersion: string | null;
  backlog: { items: number; bytes: number; oldestTs: number | null } | null;
  /** Firing alerts by rule/device/metric, from the agent's alert batches. */
  firing: Record<
    string,
    { rule: string; device: string; metric: string; severity: string; since: number; message: string }
  >;
  /** The last document published to the agent, and the one before (the `rollback` target). */
  desired: SentDoc | null;
  previous: { version: number; hash: string; config: Record<string, unknown>; from: string[] } | null;
  report: FleetReport | null;
  /** The agent's over-the-air update report (issue 16), from its status; absent before the first. */
  update?: UpdateReport | null;
}

export type RolloutState = 'canary' | 'rolling' | 'complete' | 'halted' | 'superseded';

export interface Rollout {
  id: string;
  version: number;
  kind: 'apply' | 'rollback';
  createdAt: number;
  state: RolloutState;
  haltReason: string | null;
  /** Agent ids per stage: [canary, rest]. The rest are published when the canary stage is through. */
  stages: string[][];
  /** Stages published so far. */
  stagesSent: number;
  /** When (epoch ms) the last stage was published: canary agents offline since then hold it (offlineGrace). */
  stageSentAt?: number;
  /** Configs for the agents of this rollout (sent or waiting for their stage). */
  targets: Record<string, { hash: string; config: Record<string, unknown>; from: string[] }>;
  dirHash: string | null;
}

export type Progress = Record<
  'applied' | 'rejected' | 'rolled_back' | 'pending' | 'sent' | 'waiting',
  number
> & {
  targeted: number;
};
