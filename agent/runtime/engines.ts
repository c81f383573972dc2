// Building the window and rule engines from the configuration and a checkpointed snapshot (at start and
// on every reload). A snapshot that cannot be read starts that engine fresh: the caller counts the loss.
import type { Clock } from '../../shared/clock.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import type { Alert, LateEvent, Summary } from '../../shared/model.ts';
import type { AgentConfig } from '../config.ts';
import { RuleEngine } from '../rules/engine.ts';
import { WindowEngine } from '../windows/engine.ts';
import { toRuleSpecs, toWindowSpecs } from './specs.ts';

/** The engines in use. One object for the agent's life; reload replaces its fields. */
export interface Engines {
  windows: WindowEngine;
  rules: RuleEngine;
}

/** What the engines emit (ingress.ts turns each into an outbox item). */
export interface EngineOutputs {
  summary(s: Summary): void;
  late(e: LateEvent): void;
  alert(a: Alert): void;
}

export interface EngineSnapshot {
  windows?: unknown;
  rules?: unknown;
}

export function buildEngines(
  cfg: AgentConfig,
  snap: EngineSnapshot,
  clock: Clock,
  out: EngineOutputs,
  stateReset: (key: 'windows' | 'rules', err: unknown) => void,
): Engines {
  const windowSpecs = toWindowSpecs(cfg.windows);
  const windowOpts = {
    agentId: cfg.agent.id,
    maxOutOfOrder: cfg.watermark.maxOutOfOrder,
    idleTimeout: cfg.watermark.idleTimeout,
    maxKeys: cfg.limits.maxKeys,
    maxOpenWindows: cfg.limits.maxOpenWindows,
    clock,
  };
  const windowOut = { summary: (s: Summary) => out.summary(s), late: (e: LateEvent) => out.late(e) };
  let windows = new WindowEngine(windowSpecs, windowOpts, windowOut);
  if (snap.windows !== undefined) {
    try {
      windows = WindowEngine.restore(snap.windows, windowSpecs, windowOpts, windowOut);
    } catch (err) {
      if (!(err instanceof EdgeflowError) || err.code !== 'STORE_CORRUPT') throw err;
      stateReset('windows', err);
    }
  }
  const ruleSpecs = toRuleSpecs(cfg.rules);
  const ruleOpts = { agentId: cfg.agent.id, clock, maxKeysPerRule: cfg.limits.maxKeys };
  const ruleOut = { alert: (a: Alert) => out.alert(a) };
  let rules = new RuleEngine(ruleSpecs, ruleOpts, ruleOut);
  if (snap.rules !== undefined) {
    // RuleEngine.restore ignores what it cannot read; an unreadable snapshot is still a loss to report.
    const r = snap.rules as { v?: unknown; rules?: unknown } | null;
    if (r === null || typeof r !== 'object' || r.v !== 1 || !Array.isArray(r.rules)) {
      stateReset(
        'rules',
        new EdgeflowError('STORE_CORRUPT', 'rule checkpoint is not a version 1 rule-engine snapshot'),
      );
    } else {
      rules = RuleEngine.restore(snap.rules, ruleSpecs, ruleOpts, ruleOut);
    }
  }
  return { windows, rules };
}
