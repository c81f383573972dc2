// Desired state from the fleet directory (issue 15): YAML documents the operator keeps in git, merged per
// agent in a documented order (docs/fleet.md "Merge order"), every merged config validated with the
// agent's own schema (what `edgeflow-agent check-config` runs). Pure: no sockets, no timers; the
// controller decides what to do with the result.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { agentSchema } from '../../agent/load-config.ts';
import { configHash } from '../../shared/fleet.ts';
import { describeIssues } from '../../shared/model.ts';
import { AGENT_ID_RE } from '../../shared/topics.ts';
import { disallowedPaths, type Selector } from './config.ts';

const selector = z
  .object({
    agents: z.array(z.string().min(1)).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict();

const groupDoc = z
  .object({
    kind: z.literal('group'),
    name: z.string().min(1).max(128),
    /** Lower first; equal priorities merge in file-path order. */
    priority: z.number().int().default(0),
    match: selector,
    config: z.record(z.string(), z.unknown()),
  })
  .strict();
const agentDoc = z
  .object({
    kind: z.literal('agent'),
    agent: z.string().regex(AGENT_ID_RE),
    config: z.record(z.string(), z.unknown()),
  })
  .strict();
const fleetDoc = z.discriminatedUnion('kind', [groupDoc, agentDoc]);
type FleetDoc = z.output<typeof fleetDoc> & { file: string };

export interface AgentFacts {
  id: string;
  labels: Record<string, string>;
}

export interface DesiredConfig {
  config: Record<string, unknown>;
  hash: string;
  /** The documents merged, in order (`file#group` / `file`), for `fleet diff` and the console. */
  from: string[];
}

export type FleetLoad =
  | { ok: true; dirHash: string; docs: number; desired: Map<string, DesiredConfig> }
  | { ok: false; problems: string[] };

/** `*` any run of characters, `?` one; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function selects(sel: Selector, agent: AgentFacts): boolean {
  if (!sel.agents && !sel.labels) return false; // an empty selector selects nothing, never everyone by accident
  if (sel.agents && !sel.agents.some((g) => globToRegExp(g).test(agent.id))) return false;
  for (const [k, v] of Object.entries(sel.labels ?? {})) {
    const have = agent.labels[k];
    if (have === undefined || !globToRegExp(v).test(have)) return false;
  }
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars are replaced by the later document; `null` removes a key. */
export function mergeConfig(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k]))
      out[k] = mergeConfig(out[k] as Record<string, unknown>, v);
    else out[k] = v;
  }
  return out;
}

function listYaml(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue; // editor swap files, .git
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Reads and checks every document of `dir`; problems are `file: path: problem`, one per line. */
export function readFleetDir(
  dir: string,
  allowedKeys: readonly string[],
): { docs: FleetDoc[]; dirHash: string; problems: string[] } {
  const problems: string[] = [];
  const docs: FleetDoc[] = [];
  let files: string[];
  try {
    files = listYaml(dir);
  } catch (e) {
    return {
      docs,
      dirHash: '',
      problems: [`${dir}: cannot read fleet directory (${(e as NodeJS.ErrnoException).code ?? e})`],
    };
  }
  const texts: [string, string][] = [];
  for (const path of files) {
    const file = relative(dir, path);
    const text = readFileSync(path, 'utf8');
    texts.push([file, text]);
    const lc = new LineCounter();
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lc });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lc.linePos(e.pos[0]);
        problems.push(`${file}: line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0]}`);
      }
      continue;
    }
    let raw: unknown;
    try {
      raw = doc.toJS();
    } catch (e) {
      problems.push(`${file}: (root): cannot expand the YAML: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    if (raw === null || raw === undefined) continue; // an empty file is no document
    const res = fleetDoc.safeParse(raw);
    if (!res.success) {
      for (const p of describeIssues(res.error)) problems.push(`${file}: ${p}`);
      continue;
    }
    for (const k of disallowedPaths(res.data.config, allowedKeys))
      problems.push(
        `${file}: config.${k}: not settable from the collector (fleet.allowedKeys: ${allowedKeys.join(', ')})`,
      );
    docs.push({ ...res.data, file });
  }
  const seenAgents = new Map<string, string>();
  for (const d of docs) {
    if (d.kind !== 'agent') continue;
    const prev = seenAgents.get(d.agent);
    if (prev) problems.push(`${d.file}: agent: "${d.agent}" already has an override in ${prev}`);
    seenAgents.set(d.agent, d.file);
  }
  const dirHash = configHash(texts);
  return { docs, dirHash, problems };
}

/** Merge order: groups by (priority, file path), then the agent's own override. */
export function desiredFor(
  docs: readonly FleetDoc[],
  agent: AgentFacts,
): { config: Record<string, unknown>; from: string[] } | null {
  const groups = docs
    .filter((d): d is FleetDoc & { kind: 'group' } => d.kind === 'group')
    .filter((d) => selects(d.match, agent))
    .sort((a, b) => a.priority - b.priority || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const own = docs.find((d): d is FleetDoc & { kind: 'agent' } => d.kind === 'agent' && d.agent === agent.id);
  if (groups.length === 0 && !own) return null;
  let config: Record<string, unknown> = {};
  const from: string[] = [];
  for (const g of groups) {
    config = mergeConfig(config, g.config);
    from.push(`${g.file}#${g.name}`);
  }
  if (own) {
    config = mergeConfig(config, own.config);
    from.push(own.file);
  }
  return { config, from };
}

/** The problems of one merged config, checked as the agent's check-config would (identity filled in). */
export function checkAgentConfig(agentId: string, config: Record<string, unknown>): string[] {
  // The agent's identity, its uplink address and its release key and URL stay local: placeholders stand
  // in for them (a document carries at most `update.version`, issue 16).
  const uplink = config.uplink as Record<string, unknown> | undefined;
  const update = config.update as Record<string, unknown> | undefined;
  const res = agentSchema.safeParse({
    ...config,
    agent: { id: agentId, dataDir: '/var/lib/edgeflow' },
    ...(uplink ? { uplink: { urls: ['mqtt://collector.invalid:1883'], ...uplink } } : {}),
    ...(update
      ? {
          update: { publicKeyFile: '/etc/edgeflow/release.pub', url: 'https://collector.invalid', ...update },
        }
      : {}),
  });
  return res.success ? [] : describeIssues(res.error);
}

/**
 * Everything `fleet apply` needs: per known agent its merged config and hash, or every problem. A merged
 * problem shared by many agents is one line naming the first few.
 */
export function loadFleet(
  dir: string,
  allowedKeys: readonly string[],
  agents: readonly AgentFacts[],
): FleetLoad {
  const { docs, dirHash, problems } = readFleetDir(dir, allowedKeys);
  if (problems.length > 0) return { ok: false, problems };
  const desired = new Map<string, DesiredConfig>();
  const byProblem = new Map<string, string[]>();
  for (const a of agents) {
    const d = desiredFor(docs, a);
    if (!d) continue;
    const errs = checkAgentConfig(a.id, d.config);
    for (const e of errs) {
      const key = `${d.from.join(' + ')}: ${e}`;
      const list = byProblem.get(key) ?? [];
      list.push(a.id);
      byProblem.set(key, list);
    }
    if (errs.length === 0) desired.set(a.id, { config: d.config, hash: configHash(d.config), from: d.from });
  }
  if (byProblem.size > 0) {
    const out: string[] = [];
    for (const [p, ids] of byProblem) {
      const who = ids.length > 3 ? `${ids.slice(0, 3).join(', ')} (+${ids.length - 3})` : ids.join(', ');
      out.push(`${p} (agents: ${who})`);
    }
    return { ok: false, problems: out };
  }
  return { ok: true, dirHash, docs: docs.length, desired };
}
