// Counters on an injected prom-client registry that may already hold them.
import { Counter, type Registry } from 'prom-client';

/**
 * The counter `name` on `registry`, created on first use: a component rebuilt on reload (the agent's
 * uplink and sources, runtime/agent.ts) keeps counting on the same series instead of failing to
 * register the name twice.
 */
export function counterOn<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}
