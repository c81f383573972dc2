// Which keys of a desired-state document the agent takes (issue 15 capability 2), and how the document
// is laid over the local YAML. Both work on the raw YAML shape (before schema defaults), so the merged
// result is validated exactly as `check-config` validates a file (agent/fleet/validate.ts).
import { isNeverRemote, REMOTE_EXCEPTIONS, SECRET_KEYS } from './config.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * One `path: problem` line per key of `doc` the agent refuses: under NEVER_REMOTE, outside `allow`, or a
 * secret / TLS file reference that differs from the local config. Empty: every key is allowed.
 */
export function disallowedKeys(doc: Obj, allow: readonly string[], local: Obj): string[] {
  const problems: string[] = [];
  const walk = (value: unknown, path: string, localValue: unknown) => {
    // `update` is never remote, but `update.version` may be: look inside for it.
    const carvedOut = REMOTE_EXCEPTIONS.some((e) => e.startsWith(`${path}.`));
    if (isNeverRemote(path) && !(carvedOut && isObj(value))) {
      problems.push(`${path}: can never be set remotely`);
      return;
    }
    if (allow.some((a) => path === a || path.startsWith(`${a}.`))) {
      secrets(value, path, localValue, problems);
      return;
    }
    // An ancestor of allowed paths (`uplink` for `uplink.batch`): look inside.
    if (isObj(value) && allow.some((a) => a.startsWith(`${path}.`))) {
      for (const [k, v] of Object.entries(value))
        walk(v, `${path}.${k}`, isObj(localValue) ? localValue[k] : undefined);
      return;
    }
    problems.push(`${path}: not allowed remotely (fleet.allow: ${allow.join(', ') || 'nothing'})`);
  };
  for (const [k, v] of Object.entries(doc)) walk(v, k, local[k]);
  return problems;
}

/**
 * Secret-bearing keys inside an allowed subtree must equal the local value. Items of a list are paired
 * with the local list's item of the same `name` (a document reorders or adds sources), else by index.
 */
function secrets(value: unknown, path: string, local: unknown, problems: string[]): void {
  if (Array.isArray(value)) {
    const localList = Array.isArray(local) ? local : [];
    value.forEach((item, i) => {
      const name = isObj(item) ? item.name : undefined;
      const peer =
        name !== undefined ? localList.find((l) => isObj(l) && l.name === name) : (localList[i] as unknown);
      secrets(item, `${path}.${i}`, peer, problems);
    });
    return;
  }
  if (!isObj(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const lv = isObj(local) ? local[k] : undefined;
    // `allow: [uplink]` still leaves the uplink's credentials and TLS settings local.
    if (isNeverRemote(`${path}.${k}`)) problems.push(`${path}.${k}: can never be set remotely`);
    else if (SECRET_KEYS.has(k) && !isObj(v) && !Array.isArray(v)) {
      if (v !== lv) problems.push(`${path}.${k}: credentials and TLS files cannot be set remotely`);
    } else secrets(v, `${path}.${k}`, lv, problems);
  }
}

/**
 * The document over the local config: mappings merge key by key (`uplink.batch` keeps `uplink.urls`),
 * lists and scalars replace (a document's `sources` is the whole list, as in a YAML file).
 */
export function mergeConfig(local: Obj, doc: Obj): Obj {
  const out: Obj = { ...local };
  for (const [k, v] of Object.entries(doc)) {
    const cur = out[k];
    out[k] = isObj(cur) && isObj(v) ? mergeConfig(cur, v) : v;
  }
  return out;
}
