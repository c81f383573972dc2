// `edgeflow-collector fleet apply | diff | status | rollback | resume` (issue 15): a thin client of the
// running collector's fleet routes. Where the collector is and the token come from its config
// (`http.listen`, `fleet.adminTokenFile`), or from --url / --token-file (another host, a port 0 test).
// Exit codes: 0 done, 1 the collector refused or is unreachable, 2 the fleet directory does not
// validate (one `path: problem` line per problem on stderr, nothing sent) or a bad command line.
import { existsSync, readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { join } from 'node:path';
import { loadConfigFile, readSecretFile } from '../../shared/config-file.ts';
import { readCredentialFile } from '../../shared/credentials.ts';
import { httpRequest, readBody } from '../../shared/http-client.ts';
import { openDatabase } from '../../shared/sqlite.ts';
import { collectorConfigSchema } from '../config.ts';
import { DEFAULT_ALLOWED_KEYS } from './config.ts';
import { type AgentFacts, loadFleet } from './desired.ts';

export interface FleetCliOptions {
  config?: string;
  url?: string;
  tokenFile?: string;
  /** CA (PEM file) that signs the collector's HTTPS certificate (`http.tls`); default: the system's. */
  ca?: string;
  json?: boolean;
}

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };

function target(opts: FleetCliOptions): { url: string; token: string | null } | { problems: string[] } {
  let url = opts.url;
  let tokenFile = opts.tokenFile;
  if (opts.config) {
    const res = loadConfigFile(opts.config, collectorConfigSchema);
    if (!res.ok) return { problems: res.problems };
    const listen = res.config.http.listen;
    const i = listen.lastIndexOf(':');
    const host = listen.slice(0, i) || '127.0.0.1';
    const scheme = res.config.http.tls ? 'https' : 'http';
    url ??= `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host}:${listen.slice(i + 1)}`;
    tokenFile ??= res.config.fleet?.adminTokenFile;
  }
  if (!url) return { problems: ['fleet: give --config collector.yaml or --url http://host:port'] };
  return { url: url.replace(/\/$/, ''), token: tokenFile ? readSecretFile(tokenFile) : null };
}

export async function fleetCommand(
  cmd: 'apply' | 'diff' | 'status' | 'rollback' | 'resume',
  opts: FleetCliOptions,
  out: Out,
): Promise<number> {
  const t = target(opts);
  if ('problems' in t) {
    for (const p of t.problems) out.stderr(`${p}\n`);
    return 2;
  }
  const path = cmd === 'status' ? '/fleet' : cmd === 'diff' ? '/fleet/diff' : `/fleet/${cmd}`;
  const method = cmd === 'status' || cmd === 'diff' ? 'GET' : 'POST';
  let status: number;
  let text: string;
  try {
    const res = await httpRequest(`${t.url}${path}`, {
      method,
      headers: t.token ? { authorization: `Bearer ${t.token}` } : {},
      ca: opts.ca ? readFileSync(opts.ca) : undefined,
      signal: AbortSignal.timeout(60_000),
    });
    status = res.statusCode ?? 0;
    text = (await readBody(res, 64 * 1024 * 1024)).toString('utf8');
  } catch (e) {
    out.stderr(`fleet ${cmd}: cannot reach the collector at ${t.url} (${(e as Error).message})\n`);
    return 1;
  }
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  if (status === 422 && Array.isArray(body.problems)) {
    for (const p of body.problems) out.stderr(`${p}\n`);
    return 2;
  }
  if (status < 200 || status > 299) {
    out.stderr(`fleet ${cmd}: ${status} ${String(body.error ?? STATUS_CODES[status] ?? '')}\n`);
    return 1;
  }
  if (opts.json) {
    out.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  out.stdout(render(cmd, body));
  return 0;
}

type RolloutView = {
  id: string;
  version: number;
  kind: string;
  state: string;
  haltReason: string | null;
  progress: Record<string, number>;
};

function rolloutLine(r: RolloutView): string {
  const p = r.progress;
  return `rollout ${r.id} (version ${r.version}, ${r.kind}): ${r.state}${r.haltReason ? ` — ${r.haltReason}` : ''}
  ${p.applied}/${p.targeted} applied, ${p.rejected} rejected, ${p.rolled_back} rolled back, ${(p.pending ?? 0) + (p.sent ?? 0)} in flight, ${p.waiting} waiting\n`;
}

function render(cmd: string, body: Record<string, unknown>): string {
  if (cmd === 'diff') {
    const changes = body.changes as {
      agent: string;
      from: string | null;
      to: string;
      docs: string[];
      keys: string[];
    }[];
    if (changes.length === 0) return 'no changes\n';
    return `${changes.map((c) => `~ ${c.agent}: ${c.keys.join(', ') || '(same keys)'} [${c.docs.join(' + ')}] ${c.from ?? 'local'} -> ${c.to}`).join('\n')}\n${changes.length} agent(s) would change\n`;
  }
  if (cmd === 'status') {
    const agents = body.agents as {
      id: string;
      online: boolean;
      report: { version: number; state: string; reason?: string } | null;
    }[];
    const byState = new Map<string, number>();
    for (const a of agents) {
      const k = a.report ? `v${a.report.version} ${a.report.state}` : 'no report';
      byState.set(k, (byState.get(k) ?? 0) + 1);
    }
    const r = body.rollout as RolloutView | null;
    const problems = body.problems as string[];
    return `${r ? rolloutLine(r) : 'no rollout yet\n'}agents: ${agents.length} (${agents.filter((a) => a.online).length} online)\n${[...byState].map(([k, n]) => `  ${k}: ${n}`).join('\n')}\n${problems.length ? `fleet directory refused:\n${problems.map((p) => `  ${p}`).join('\n')}\n` : ''}`;
  }
  const r = body.rollout as RolloutView | null;
  if (cmd === 'apply' && !r)
    return `nothing to roll out (${String(body.unchanged)} agents already have their desired config)\n`;
  return r ? rolloutLine(r) : 'ok\n';
}

/**
 * `fleet check`: validates a fleet directory without a running collector (CI on the fleet repository).
 * Agents: the collector's credentials, with the labels its fleet.db last saw when it can be read.
 */
export function fleetCheck(opts: { config?: string; dir?: string; agents?: string }, out: Out): number {
  let dir = opts.dir;
  let allowed: readonly string[] = DEFAULT_ALLOWED_KEYS;
  const facts = new Map<string, AgentFacts>();
  if (opts.config) {
    const res = loadConfigFile(opts.config, collectorConfigSchema);
    if (!res.ok) {
      for (const p of res.problems) out.stderr(`${p}\n`);
      return 2;
    }
    dir ??= res.config.fleet?.dir;
    allowed = res.config.fleet?.allowedKeys ?? allowed;
    try {
      for (const id of Object.keys(readCredentialFile(res.config.mqtt.credentials).agents))
        facts.set(id, { id, labels: {} });
    } catch {}
    const dbPath = join(res.config.collector.dataDir, 'fleet.db');
    if (existsSync(dbPath)) {
      try {
        const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
        const rows = db.prepare('SELECT key, value FROM fleet_agents_v1').all() as {
          key: string;
          value: string;
        }[];
        for (const r of rows)
          facts.set(r.key, {
            id: r.key,
            labels: (JSON.parse(r.value) as { labels?: Record<string, string> }).labels ?? {},
          });
        db.close();
      } catch {}
    }
  }
  for (const id of opts.agents?.split(',').filter(Boolean) ?? [])
    if (!facts.has(id)) facts.set(id, { id, labels: {} });
  if (!dir) {
    out.stderr('fleet check: give --dir DIR or --config collector.yaml with a fleet: block\n');
    return 2;
  }
  const r = loadFleet(dir, allowed, [...facts.values()]);
  if (!r.ok) {
    for (const p of r.problems) out.stderr(`${p}\n`);
    return 2;
  }
  out.stdout(
    facts.size === 0
      ? `${dir}: documents ok (${r.docs}); no agents known, so no merged config was checked: give --config or --agents\n`
      : `${dir}: ok (${r.docs} documents, ${r.desired.size} of ${facts.size} agents get a config)\n`,
  );
  return 0;
}
