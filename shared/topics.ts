// MQTT topics of the uplink (SPEC.md section 3).
/**
 * An agent id: 1-64 of [a-zA-Z0-9._-], starting with a letter or digit. The first character rule
 * (issue 12, item 12) keeps out `.`, `..` and `-` (path and option look-alikes) and `__proto__`
 * (an object key that a credentials file cannot hold: `add-agent` printed a secret that never worked).
 */
export const AGENT_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;
export const AGENT_ID_RULE = '1-64 characters of [a-zA-Z0-9._-], starting with a letter or digit';
export const TOPIC_ROOT = 'edgeflow/v1';
export const UPLINK_KINDS = ['summaries', 'alerts', 'status', 'late'] as const;
export type UplinkKind = (typeof UPLINK_KINDS)[number];

export function uplinkTopic(agentId: string, kind: UplinkKind): string {
  return `${TOPIC_ROOT}/${agentId}/${kind}`;
}

/** Downlink (collector → agent, e.g. commands); an agent may subscribe only to its own. */
export function downlinkTopic(agentId: string): string {
  return `${TOPIC_ROOT}/${agentId}/down`;
}

export function parseUplinkTopic(topic: string): { agentId: string; kind: UplinkKind } | null {
  const parts = topic.split('/');
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) return null;
  const agentId = parts[2]!;
  const kind = parts[3] as UplinkKind;
  if (!AGENT_ID_RE.test(agentId) || !UPLINK_KINDS.includes(kind)) return null;
  return { agentId, kind };
}

/**
 * A source's `topicPattern` such as `plant/{device}/{metric}`: returns a matcher that pulls the named
 * fields out of a concrete topic, or null when the topic does not fit the pattern.
 */
export function compileTopicPattern(pattern: string): (topic: string) => Record<string, string> | null {
  const segs = pattern.split('/');
  // The field name of each `{field}` segment, found once here, not per message (issue 14: this ran a
  // regex per segment of every MQTT message).
  const fields = segs.map((s) => /^\{(\w+)\}$/.exec(s)?.[1] ?? null);
  const open = segs.at(-1) === '#';
  return (topic) => {
    const parts = topic.split('/');
    if (!open && parts.length !== segs.length) return null;
    const out: Record<string, string> = {};
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      const p = parts[i];
      if (s === '#') return out;
      if (p === undefined) return null;
      const f = fields[i];
      if (f != null) {
        if (p === '') return null;
        out[f] = p;
      } else if (s !== '+' && s !== p) return null;
    }
    return out;
  };
}

/** The MQTT subscription filter for a topic pattern: `{field}` segments become `+`. */
export function topicPatternToFilter(pattern: string): string {
  return pattern
    .split('/')
    .map((s) => (/^\{\w+\}$/.test(s) ? '+' : s))
    .join('/');
}
