// The validated rule configuration (SPEC.md section 2, `rules:`). One zod schema per kind (in the
// kind's file) joined here on `kind`, plus the checks zod cannot express alone: expressions compile
// against the identifiers of the rule's `on`, `field` only on window rules, message placeholders.
// check-config prints the issues as `rules.N.<key>: <message>`.
import { z } from 'zod';
import { describeIssues } from '../../shared/model.ts';
import { builtFrom, discriminatedUnionOf } from '../../shared/registry.ts';
import { READING_SCOPE, type Scope, WINDOW_SCOPE } from './expr.ts';
import { type RuleSpec, type RuleSpecInput, ruleKinds } from './registry.ts';
import { type Built, MESSAGE_PLACEHOLDERS, SpecError } from './rule.ts';

export type { RuleSpec, RuleSpecInput } from './registry.ts';

/** The expression scope of a rule: reading fields, or window summary fields. */
export function scopeOf(spec: RuleSpec): Scope {
  return spec.on === 'reading' ? READING_SCOPE : WINDOW_SCOPE;
}

/** Builds the detector of a spec. Throws SpecError (key + message) for problems in its expressions. */
export function buildDetector(spec: RuleSpec): Built<unknown> {
  return ruleKinds.get(spec.kind).build(spec, scopeOf(spec));
}

/** Problems that need the whole spec, as [key, message]. */
export function specProblems(spec: RuleSpec): [string, string][] {
  const out: [string, string][] = [];
  if (spec.field !== undefined && spec.on === 'reading') {
    out.push(['field', 'field selects a window aggregate; it only applies to rules with on: window:<name>']);
  }
  if (spec.message !== undefined) {
    for (const m of spec.message.matchAll(/\{(\w+)\}/g)) {
      if (!(MESSAGE_PLACEHOLDERS as readonly string[]).includes(m[1]!)) {
        out.push([
          'message',
          `unknown placeholder {${m[1]}} (known: ${MESSAGE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`,
        ]);
      }
    }
  }
  if (
    spec.kind === 'spike' &&
    spec.warmup !== undefined &&
    'count' in spec.window &&
    spec.warmup > spec.window.count
  ) {
    out.push(['warmup', `must be at most window (${spec.window.count})`]);
  }
  try {
    buildDetector(spec);
  } catch (e) {
    // zod runs refinements after non-fatal issues too, so `spec` may hold invalid values that were
    // already reported; only expression problems are ours to add.
    if (e instanceof SpecError) out.push([e.key, e.message]);
  }
  return out;
}

/**
 * Rule specs that came out of ruleSpecSchema: the engine takes them as they are instead of parsing them
 * again (issue 13: `on` was parsed, and every expression compiled, once per pass).
 */
const validated = new WeakSet<object>();
export function isValidated(spec: object): boolean {
  return validated.has(spec);
}

/** One rule, fully validated (kind keys, durations, expressions): the union of the registered kinds. */
export const ruleSpecSchema = builtFrom([ruleKinds], () =>
  discriminatedUnionOf<RuleSpec, RuleSpecInput>('kind', ruleKinds)
    .superRefine((spec, ctx) => {
      for (const [key, message] of specProblems(spec)) ctx.addIssue({ code: 'custom', path: [key], message });
    })
    .transform((spec) => {
      validated.add(spec);
      return spec;
    }),
);

/** The `rules:` list: every rule valid and rule names unique (they are part of alert ids). */
export const ruleSpecsSchema = builtFrom([ruleKinds], () =>
  z.array(ruleSpecSchema()).superRefine((specs, ctx) => {
    const seen = new Map<string, number>();
    specs.forEach((s, i) => {
      const first = seen.get(s.name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `duplicate rule name "${s.name}" (also rules.${first})`,
        });
      else seen.set(s.name, i);
    });
  }),
);

/** Validates raw rules (e.g. from YAML); problems read `rules[2].when: unknown identifier "vale"`. */
export function compileRuleSpecs(raw: unknown[]): { specs: RuleSpec[] } | { problems: string[] } {
  const res = ruleSpecsSchema().safeParse(raw);
  if (res.success) return { specs: res.data };
  return {
    problems: describeIssues(res.error, 'rules').map((p) => p.replace(/^rules\.(\d+)/, 'rules[$1]')),
  };
}
