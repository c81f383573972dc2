// Loads a YAML config and validates it against a zod schema, collecting *every* problem as
// `yaml.path: message` (SPEC.md section 1: check-config prints one line per problem, exit 2).
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { describeIssues } from './model.ts';

export type ConfigResult<T> = { ok: true; config: T } | { ok: false; problems: string[] };

export function parseConfigText<S extends z.ZodType>(text: string, schema: S): ConfigResult<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0]}`;
      }),
    };
  }
  let raw: unknown;
  try {
    // yaml refuses to expand more than 100 aliases (maxAliasCount) by throwing: an alias bomb is a
    // config problem like any other, one line (issue 12 item 2: it killed a running agent on SIGHUP).
    raw = doc.toJS();
  } catch (e) {
    return {
      ok: false,
      problems: [`(root): cannot expand the YAML: ${(e as Error).message.split('\n')[0]}`],
    };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, problems: ['(root): expected a YAML mapping of config keys'] };
  }
  const res = schema.safeParse(raw);
  if (!res.success) return { ok: false, problems: describeIssues(res.error) };
  return { ok: true, config: res.data };
}

export function loadConfigFile<S extends z.ZodType>(path: string, schema: S): ConfigResult<z.output<S>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return {
      ok: false,
      problems: [`${path}: cannot read config file (${(e as NodeJS.ErrnoException).code ?? e})`],
    };
  }
  return parseConfigText(text, schema);
}

/** Reads a secret from a file (trailing newline trimmed). Never log the result. */
export function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}
