// The fleet console (issue 15): a few server-rendered HTML pages on their own listener, off by default
// and bound to 127.0.0.1 (fleet.console). No script, no CDN, no asset to fetch: it works offline and a
// Content-Security-Policy of `default-src 'none'` holds. When fleet.adminTokenFile is set, every page
// needs a login with that token (a cookie holding an HMAC of it, HttpOnly, SameSite=Strict); config.ts
// refuses a console beyond loopback without one.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../shared/clock.ts';
import { parseHostPort } from '../../shared/http.ts';
import type { Logger } from '../../shared/log.ts';
import { type ServerTlsFiles, serverTlsOptions } from '../../shared/tls.ts';
import type { AgentRecord, FleetController } from './controller.ts';
import { tokenMatches } from './http.ts';

const COOKIE = 'edgeflow_console';

function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function ago(now: number, t: number | null): string {
  if (t === null) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const CSS = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f4f4f4}
.ok{color:#17702f}.bad{color:#b3261e;font-weight:bold}.muted{color:#777}.bar{display:flex;height:18px;width:100%;max-width:600px;border:1px solid #999}
.bar span{display:block;height:100%}.applied{background:#2e7d32}.failed{background:#c62828}.inflight{background:#f9a825}.waiting{background:#ddd}
pre{background:#f6f6f6;padding:8px;overflow:auto}nav a{margin-right:1em}`;

function page(title: string, body: string, refresh = true): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · edgeflow fleet</title>
${refresh ? '<meta http-equiv="refresh" content="5">' : ''}<style>${CSS}</style></head><body>
<nav><a href="/">Fleet</a></nav><h1>${esc(title)}</h1>${body}</body></html>`;
}

function stateCell(a: Pick<AgentRecord, 'report'>): string {
  const r = a.report;
  if (!r) return '<span class="muted">no report</span>';
  const cls = r.state === 'applied' ? 'ok' : r.state === 'pending' ? '' : 'bad';
  return `<span class="${cls}" data-state="${esc(r.state)}">${esc(r.state)}</span>${r.reason ? ` <span class="muted">${esc(r.reason)}</span>` : ''}`;
}

function overview(fleet: FleetController, now: number): string {
  const v = fleet.view();
  let rollout = '<p class="muted">No rollout yet.</p>';
  if (v.rollout) {
    const p = v.rollout.progress;
    const w = (n: number) => (p.targeted ? (100 * n) / p.targeted : 0).toFixed(2);
    rollout = `<section id="rollout"><h2>Rollout ${esc(v.rollout.id)} (version ${v.rollout.version}, ${esc(v.rollout.kind)}): <span id="rollout-state" class="${v.rollout.state === 'halted' ? 'bad' : ''}">${esc(v.rollout.state)}</span></h2>
${v.rollout.haltReason ? `<p class="bad">${esc(v.rollout.haltReason)}</p>` : ''}
<div class="bar" title="rollout progress"><span class="applied" style="width:${w(p.applied)}%"></span><span class="failed" style="width:${w(p.rejected + p.rolled_back)}%"></span><span class="inflight" style="width:${w(p.pending + p.sent)}%"></span></div>
<p id="progress">${p.applied} of ${p.targeted} applied · ${p.rejected} rejected · ${p.rolled_back} rolled back · ${p.pending + p.sent} in flight · ${p.waiting} waiting for their stage</p>
<p>Stages: ${v.rollout.stages.map((s) => `${esc(s.name)} ${s.agents} agents (${s.sent ? 'sent' : 'not sent'})`).join(' → ')}</p></section>`;
  }
  const problems = v.problems.length
    ? `<section id="problems"><h2 class="bad">Fleet directory refused</h2><pre>${v.problems.map(esc).join('\n')}</pre></section>`
    : '';
  const online = v.agents.filter((a) => a.online).length;
  const rows = v.agents
    .map(
      (
        a,
      ) => `<tr data-agent="${esc(a.id)}"><td><a href="/agent?id=${encodeURIComponent(a.id)}">${esc(a.id)}</a></td>
<td>${a.online ? (a.stale ? '<span class="bad">online, no status</span>' : '<span class="ok">online</span>') : `<span class="muted">offline</span>`} <span class="muted">${esc(ago(now, a.lastSeen))}</span></td>
<td>${esc(a.agentVersion ?? '')}${a.update?.wanted && a.update.wanted !== a.agentVersion ? ` <span class="muted">→ ${esc(a.update.wanted)} (${esc(a.update.state)})</span>` : ''}</td><td>${a.desired ? a.desired.version : '<span class="muted">local</span>'}</td>
<td>${a.report ? a.report.version : ''}</td><td>${stateCell(a)}</td><td>${a.backlog ? a.backlog.items : ''}</td>
<td>${a.firingAlerts ? `<span class="bad">${a.firingAlerts}</span>` : '0'}</td></tr>`,
    )
    .join('\n');
  return page(
    'Fleet',
    `${problems}${rollout}<h2>Agents (${v.agents.length}, ${online} online)</h2>
<table id="agents"><thead><tr><th>agent</th><th>connection</th><th>agent version</th><th>desired</th><th>reported</th><th>config state</th><th>backlog</th><th>firing alerts</th></tr></thead>
<tbody>${rows}</tbody></table>`,
  );
}

function detail(fleet: FleetController, id: string, now: number): string | null {
  const a = fleet.agent(id);
  if (!a) return null;
  const firing = Object.values(a.firing);
  return page(
    `Agent ${a.id}`,
    `<table id="detail"><tbody>
<tr><th>connection</th><td>${a.online ? 'online' : 'offline'}, last seen ${esc(ago(now, a.lastSeen))}</td></tr>
<tr><th>agent version</th><td>${esc(a.agentVersion ?? 'unknown')}</td></tr>
<tr><th>update</th><td>${a.update ? `${esc(a.update.state)}${a.update.wanted ? ` (wanted ${esc(a.update.wanted)})` : ''}${a.update.reason ? `: ${esc(a.update.reason)}` : ''}` : '<span class="muted">none reported</span>'}</td></tr>
<tr><th>labels</th><td>${
      Object.entries(a.labels)
        .map(([k, v]) => `${esc(k)}=${esc(v)}`)
        .join(', ') || '<span class="muted">none</span>'
    }</td></tr>
<tr><th>desired</th><td>${a.desired ? `version ${a.desired.version} (${esc(a.desired.rollout)}), ${esc(a.desired.hash)}, from ${a.desired.from.map(esc).join(' + ')}` : 'local config only'}</td></tr>
<tr><th>config state</th><td>${a.report ? `version ${a.report.version}: ` : ''}${stateCell(a)}</td></tr>
<tr><th>last known good</th><td>${a.report?.lastKnownGood ? `version ${a.report.lastKnownGood.version}` : ''}</td></tr>
<tr><th>backlog</th><td>${a.backlog ? `${a.backlog.items} items, ${a.backlog.bytes} bytes` : ''}</td></tr>
</tbody></table>
<h2>Firing alerts (${firing.length})</h2>
${firing.length ? `<table id="alerts"><thead><tr><th>rule</th><th>device</th><th>metric</th><th>severity</th><th>since</th><th>message</th></tr></thead><tbody>${firing.map((f) => `<tr><td>${esc(f.rule)}</td><td>${esc(f.device)}</td><td>${esc(f.metric)}</td><td>${esc(f.severity)}</td><td>${esc(new Date(f.since).toISOString())}</td><td>${esc(f.message)}</td></tr>`).join('')}</tbody></table>` : '<p class="muted">none</p>'}
<h2>Desired configuration</h2><pre id="config">${esc(JSON.stringify(a.desired?.config ?? {}, null, 2))}</pre>`,
  );
}

function loginPage(failed: boolean): string {
  return page(
    'Log in',
    `${failed ? '<p class="bad">Wrong token.</p>' : ''}<form method="post" action="/login"><label>Admin token <input type="password" name="token" autocomplete="current-password" autofocus></label> <button type="submit">Log in</button></form>`,
    false,
  );
}

async function readBody(req: IncomingMessage, max = 4096): Promise<string> {
  let s = '';
  for await (const chunk of req) {
    s += chunk;
    if (s.length > max) throw new Error('body too large');
  }
  return s;
}

export async function startConsole(
  listen: string,
  fleet: FleetController,
  token: () => string | null,
  log: Logger,
  clock: Clock,
  tls?: ServerTlsFiles,
): Promise<{ url: string; close(): Promise<void> }> {
  const cookieFor = (t: string) => createHmac('sha256', t).update('edgeflow-console-v1').digest('hex');
  const loggedIn = (req: IncomingMessage) => {
    const t = token();
    if (!t) return true; // no token configured: config.ts allows this on loopback only
    const c = (req.headers.cookie ?? '').split(/;\s*/).find((x) => x.startsWith(`${COOKIE}=`));
    return tokenMatches(cookieFor(t), c?.slice(COOKIE.length + 1));
  };
  const send = (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}) => {
    res
      .writeHead(status, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy':
          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
        ...headers,
      })
      .end(html);
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://console');
    (async () => {
      if (url.pathname === '/login') {
        if (req.method === 'POST') {
          const body = new URLSearchParams(await readBody(req));
          const t = token();
          if (t && tokenMatches(t, body.get('token') ?? undefined)) {
            return send(res, 303, '', {
              location: '/',
              // Secure over HTTPS: the browser never sends the session cookie in the clear.
              'set-cookie': `${COOKIE}=${cookieFor(t)}; HttpOnly; SameSite=Strict; Path=/${tls ? '; Secure' : ''}`,
            });
          }
          return send(res, 401, loginPage(true));
        }
        return send(res, 200, loginPage(false));
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, page('Not allowed', ''));
      if (!loggedIn(req)) return send(res, 303, '', { location: '/login' });
      const now = clock.now();
      if (url.pathname === '/') return send(res, 200, overview(fleet, now));
      if (url.pathname === '/agent') {
        const html = detail(fleet, url.searchParams.get('id') ?? '', now);
        return html
          ? send(res, 200, html)
          : send(res, 404, page('Unknown agent', '<p>No such agent.</p>', false));
      }
      return send(res, 404, page('Not found', '', false));
    })().catch((err: Error) => {
      log.warn({ err: err.message }, 'console request failed');
      if (!res.headersSent) send(res, 500, page('Error', '', false));
    });
  };
  const server = tls ? createHttpsServer(serverTlsOptions(tls), handler) : createServer(handler);
  const { host, port } = parseHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url }, 'fleet console up');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
