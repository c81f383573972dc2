// The collector's HTTP routes (served by shared/http.ts): Prometheus text on /metrics, liveness on
// /healthz (503 until the spool and the broker are up), and the JSON status on /status.
import type { Registry } from 'prom-client';
import type { Route } from '../shared/http.ts';

export interface HttpSources {
  registry: Registry;
  /** Refreshes gauges that are computed on demand (spool depth and age per sink). */
  refresh(): void;
  healthy(): boolean;
  status(): unknown;
  /** More routes on the same listener (fleet control, issue 15). */
  extra?: Record<string, Route>;
}

export function collectorRoutes(src: HttpSources): Record<string, Route> {
  return {
    '/metrics': async () => {
      src.refresh();
      return { type: src.registry.contentType, body: await src.registry.metrics() };
    },
    '/healthz': () =>
      src.healthy()
        ? { type: 'text/plain', body: 'ok\n' }
        : { status: 503, type: 'text/plain', body: 'not ready\n' },
    '/status': () => ({ body: JSON.stringify(src.status()) }),
    ...src.extra,
  };
}
