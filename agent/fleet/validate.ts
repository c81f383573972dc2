// A merged configuration is checked exactly as `check-config` checks a file (agent/main.ts loadChecked):
// the same schema, the same `path: problem` lines, then the files it names (config-files.ts).
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ConfigResult } from '../../shared/config-file.ts';
import { describeIssues } from '../../shared/model.ts';
import type { AgentConfig } from '../config.ts';
import { checkConfigFiles } from '../config-files.ts';
import { agentSchema } from '../load-config.ts';

export function validateAgentConfig(raw: Record<string, unknown>): ConfigResult<AgentConfig> {
  const res = agentSchema.safeParse(raw);
  if (!res.success) return { ok: false, problems: describeIssues(res.error) };
  const config = res.data as AgentConfig;
  const problems = checkConfigFiles(config);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config };
}

/** The local YAML as a plain object (before defaults): what documents are merged over. */
export function readRawConfig(path: string): Record<string, unknown> {
  const doc = parseDocument(readFileSync(path, 'utf8'), { uniqueKeys: true });
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${path}: expected a YAML mapping`);
  return raw as Record<string, unknown>;
}
