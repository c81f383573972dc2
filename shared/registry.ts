// One registry per plugin kind (issue 13; Telegraf's plugins/inputs/registry.go): the kind's
// implementations are descriptors (type name, config schema, factory, capabilities) added in ONE file
// per kind (agent/sources/registry.ts, agent/decoders/registry.ts, ...). Everything that lists kinds —
// the config unions, docs/agent-config.md, error messages — asks the registry, so adding a kind is its
// own file and one registry line. `add` is public so a test (or an embedder) can register a kind of its
// own before the config is parsed (docs/design/plugins.md).
import { z } from 'zod';

export interface Descriptor {
  /** The name users write in the config (`type: serial`, `format: json`, `kind: threshold`). */
  readonly type: string;
}

export class Registry<D extends Descriptor> {
  private readonly byType = new Map<string, D>();
  /** Bumped by every add(): schemas built from the registry are rebuilt when it changes. */
  version = 0;

  /** `what` names the config key in messages: "unknown format "xml", expected one of ...". */
  constructor(
    readonly what: string,
    builtins: readonly D[],
  ) {
    for (const d of builtins) this.add(d);
  }

  add(d: D): this {
    if (this.byType.has(d.type)) throw new Error(`${this.what} "${d.type}" is registered twice`);
    this.byType.set(d.type, d);
    this.version++;
    return this;
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }

  get(type: string): D {
    const d = this.byType.get(type);
    if (d === undefined)
      throw new RangeError(`unknown ${this.what} "${type}", expected one of ${this.names().join(', ')}`);
    return d;
  }

  all(): D[] {
    return [...this.byType.values()];
  }

  names(filter?: (d: D) => boolean): D['type'][] {
    return this.all()
      .filter((d) => filter === undefined || filter(d))
      .map((d) => d.type);
  }
}

/** A value built from registries, rebuilt only when one of them changed (a config schema). */
export function builtFrom<T>(registries: readonly Registry<Descriptor>[], build: () => T): () => T {
  let seen = '';
  let value: T | undefined;
  return () => {
    const now = registries.map((r) => r.version).join(',');
    if (value === undefined || now !== seen) {
      value = build();
      seen = now;
    }
    return value;
  };
}

/** A value built on its first call and kept (a kind's config schema, built only when used). */
export function lazily<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}

/**
 * The union of a registry's schemas on `key` (`type:`, `kind:`), for a config list such as `sources:`.
 * `Out`/`In` are the static types of the built-in kinds; kinds registered at run time (a test, an
 * embedder) are validated by their own schema all the same. This cast is the one place the open
 * registry meets the closed static union.
 *
 * Each option holds only the discriminator up front and reads the kind's `schema` (a getter that builds
 * it, in the built-in descriptors) when an entry of that kind is parsed: a start builds the schemas of
 * the kinds its config names, not all of them (issue 14: ~5 ms of each start). The entry then goes
 * through the kind's schema as it is, so its problems and their messages are the kind's own.
 */
export function discriminatedUnionOf<Out, In>(
  key: string,
  registry: Registry<Descriptor & { readonly schema: z.ZodObject }>,
): z.ZodType<Out, In> {
  const [first, ...rest] = registry
    .all()
    .map((d) =>
      (z.looseObject({ [key]: z.literal(d.type) }) as z.ZodType).pipe(z.lazy((): z.ZodType => d.schema)),
    ) as unknown as z.ZodObject[];
  if (first === undefined) throw new Error(`no ${registry.what} registered`);
  return z.discriminatedUnion(key, [first, ...rest], {
    error: (iss) =>
      iss.code === 'invalid_union'
        ? `expected ${key} to be one of ${registry.names().join(' | ')}`
        : undefined,
  }) as unknown as z.ZodType<Out, In>;
}

/**
 * A config key whose value names a registered kind (`format: json`, `aggregates: [mean]`), checked at
 * parse time against the registry as it is then, with zod's enum message. `filter` narrows the kinds a
 * key accepts (a serial source takes no format that needs a topic).
 */
export function oneOf<D extends Descriptor>(
  registry: Registry<D>,
  filter?: (d: D) => boolean,
): z.ZodType<D['type'], string> {
  const ok = (v: string) => registry.has(v) && (filter === undefined || filter(registry.get(v)));
  return z
    .string()
    .superRefine((v, ctx) => {
      if (!ok(v)) {
        const names = registry.names(filter);
        ctx.addIssue({
          code: 'custom',
          message: `Invalid option: expected one of ${names.map((n) => `"${n}"`).join('|')}`,
        });
      }
    })
    .meta({ oneOf: () => registry.names(filter) }) as unknown as z.ZodType<D['type'], string>;
}
