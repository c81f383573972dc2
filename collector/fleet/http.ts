// The fleet routes on the collector's HTTP listener (issue 15, docs/fleet.md "HTTP API"). `/fleet` is a
// read-only overview like `/status` (no configs in it); everything that shows configs or changes the
// fleet needs `Authorization: Bearer <token>` (fleet.adminTokenFile). Without a token file the admin
// routes answer 403: fleet changes are never open by default.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Route } from '../../shared/http.ts';
import type { FleetController } from './controller.ts';

export function tokenMatches(expected: string | null, given: string | undefined): boolean {
  if (!expected || !given) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

export function fleetRoutes(fleet: FleetController, token: () => string | null): Record<string, Route> {
  const json = (body: unknown, status = 200) => ({ status, body: `${JSON.stringify(body)}\n` });
  const guarded =
    (
      fn: (
        req: IncomingMessage,
        url: URL,
      ) => Promise<{ status?: number; body: string }> | { status?: number; body: string },
    ): Route =>
    (req) => {
      const t = token();
      if (!t) return json({ error: 'fleet admin API disabled: set fleet.adminTokenFile' }, 403);
      const auth = req.headers.authorization;
      const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      if (!tokenMatches(t, given)) return json({ error: 'unauthorized' }, 401);
      return fn(req, new URL(req.url ?? '/', 'http://x'));
    };
  return {
    '/fleet': () => json(fleet.view()),
    '/fleet/agent': guarded((_req, url) => {
      const a = fleet.agent(url.searchParams.get('id') ?? '');
      return a
        ? json({ ...a, desired: a.desired ? { ...a.desired, payload: undefined } : null })
        : json({ error: 'unknown agent' }, 404);
    }),
    '/fleet/diff': guarded(() => {
      const d = fleet.diff();
      return d.ok ? json(d) : json(d, 422);
    }),
    'POST /fleet/apply': guarded(async () => {
      const r = await fleet.apply();
      if (!r.ok) return json(r, 422);
      return json({
        ok: true,
        rollout: r.rollout ? fleet.rolloutView(r.rollout) : null,
        changed: r.changed.length,
        unchanged: r.unchanged,
      });
    }),
    'POST /fleet/resume': guarded(async () => {
      const r = await fleet.resume();
      return r.ok ? json({ ok: true, rollout: fleet.rolloutView(r.rollout!) }) : json(r, 409);
    }),
    'POST /fleet/rollback': guarded(async () => {
      const r = await fleet.rollback();
      return r.ok ? json({ ok: true, rollout: fleet.rolloutView(r.rollout!) }) : json(r, 409);
    }),
  };
}
