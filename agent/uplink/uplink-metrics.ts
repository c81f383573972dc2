// The uplink's counters (issue 12 item 6), get-or-create on the agent's registry: a reload that builds a
// new uplink keeps counting on the same series.
import type { Counter, Registry } from 'prom-client';
import { counterOn } from '../../shared/prom.ts';

export interface UplinkMetrics {
  batches: Counter<'kind'>;
  items: Counter<'kind'>;
  requeued: Counter<'kind'>;
  reconnects: Counter;
  errors: Counter<'code'>;
}

export function uplinkMetrics(r: Registry): UplinkMetrics {
  return {
    batches: counterOn(r, 'edgeflow_agent_uplink_batches_total', 'Batches acknowledged by the collector', [
      'kind',
    ]),
    items: counterOn(r, 'edgeflow_agent_uplink_items_total', 'Items acknowledged by the collector', ['kind']),
    requeued: counterOn(
      r,
      'edgeflow_agent_uplink_requeued_items_total',
      'In-flight items made eligible again after a disconnect (will be re-sent)',
      ['kind'],
    ),
    reconnects: counterOn(r, 'edgeflow_agent_uplink_reconnects_total', 'Successful reconnections', []),
    errors: counterOn(r, 'edgeflow_agent_uplink_errors_total', 'Uplink connection errors', ['code']),
  };
}
