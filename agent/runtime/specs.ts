// Config (validated YAML) → engine specs. The config schema already normalises durations to ms and fills
// defaults, so this is a typed hand-over, kept in one place so the engines never see YAML shapes.
import type { WindowConfig } from '../config.ts';
import type { RuleSpec } from '../rules/registry.ts';
import type { WindowSpec } from '../windows/window.ts';

export function toWindowSpecs(windows: readonly WindowConfig[]): WindowSpec[] {
  return windows.map((w) => ({
    name: w.name,
    type: w.type,
    size: w.size,
    slide: w.slide,
    gap: w.gap,
    count: w.count,
    aggregates: w.aggregates,
    allowedLateness: w.allowedLateness,
    match: { device: w.match.device, metric: w.match.metric },
    lateEvents: w.lateEvents,
  }));
}

/** Rules are validated and typed by the config schema (issue 13: no cast back from unknown[]). */
export function toRuleSpecs(rules: readonly RuleSpec[]): RuleSpec[] {
  return [...rules];
}
