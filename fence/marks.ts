/**
 * Reading the @paymentOnly marks from SDL. A subgraph imports paygraph's data-use spec with
 * `@link(url: "https://paygraph.dev/data-use/v1.0", import: ["@paymentOnly"])`; the marks are the
 * types and fields that carry the directive under whatever name the @link gave it (imported,
 * renamed with `as`, or namespaced). Marks are the only input the protection rules start from.
 */
import { Kind, type ConstDirectiveNode, type DirectiveNode, type DocumentNode, type ValueNode } from 'graphql';
import { OVERSIGHT_SOURCE, PAYMENT_ONLY_DIRECTIVE, PAYMENT_ONLY_SPEC_URL } from './policy.js';

/** The @paymentOnly marks written in one SDL document (subgraph or supergraph), or several merged. */
export interface Marks {
  /** Object and interface types marked @paymentOnly. */
  types: ReadonlySet<string>;
  /** Field coordinates `Type.field` marked @paymentOnly. */
  fields: ReadonlySet<string>;
  /**
   * The marks whose `source` is `oversight` (policy.ts OVERSIGHT_SOURCE), types and field
   * coordinates: a bank's own oversight view, the one payment-only data an `oversight` caller may
   * receive. Absent: none.
   */
  oversight?: ReadonlySet<string>;
}

function constValue(node: ValueNode | undefined): unknown {
  if (!node) return undefined;
  switch (node.kind) {
    case Kind.STRING:
    case Kind.ENUM:
      return node.value;
    case Kind.LIST:
      return node.values.map(constValue);
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, constValue(f.value)]));
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    default:
      return undefined;
  }
}

/** A directive argument's literal value (strings, enums, lists, objects, booleans, numbers). */
export function directiveArg(d: DirectiveNode | ConstDirectiveNode, name: string): unknown {
  return constValue(d.arguments?.find((a) => a.name.value === name)?.value);
}

function specBase(url: string): string {
  return url.replace(/\/v\d+(\.\d+)?\/?$/, '');
}

/**
 * The name under which `@name` from the spec at `specUrl` is used in `doc`, following its @link
 * (imports with or without `as`, or the spec's namespace prefix). `fallback` is returned when the
 * document does not link the spec at all (e.g. a Federation 1 SDL).
 */
export function linkedDirectiveName(doc: DocumentNode, specUrl: string, name: string, fallback: string | null = name): string | null {
  const base = specBase(specUrl);
  for (const def of doc.definitions) {
    if (def.kind !== Kind.SCHEMA_DEFINITION && def.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const d of def.directives ?? []) {
      if (d.name.value !== 'link') continue;
      const url = directiveArg(d, 'url');
      if (typeof url !== 'string' || specBase(url) !== base) continue;
      const imports = directiveArg(d, 'import');
      if (Array.isArray(imports)) {
        for (const imp of imports) {
          if (imp === `@${name}`) return name;
          if (imp && typeof imp === 'object' && (imp as { name?: unknown }).name === `@${name}`) {
            const as = (imp as { as?: unknown }).as;
            return typeof as === 'string' ? as.replace(/^@/, '') : name;
          }
        }
      }
      const as = directiveArg(d, 'as');
      const prefix = typeof as === 'string' ? as : (base.split('/').pop() ?? name);
      return `${prefix}__${name}`;
    }
  }
  return fallback;
}

export function readMarks(doc: DocumentNode): Marks {
  const directive = linkedDirectiveName(doc, PAYMENT_ONLY_SPEC_URL, PAYMENT_ONLY_DIRECTIVE);
  const types = new Set<string>();
  const fields = new Set<string>();
  const oversight = new Set<string>();
  const isOversight = (ds: readonly (DirectiveNode | ConstDirectiveNode)[] | undefined) =>
    ds?.some((d) => d.name.value === directive && directiveArg(d, 'source') === OVERSIGHT_SOURCE) ?? false;
  for (const def of doc.definitions) {
    if (
      def.kind !== Kind.OBJECT_TYPE_DEFINITION &&
      def.kind !== Kind.OBJECT_TYPE_EXTENSION &&
      def.kind !== Kind.INTERFACE_TYPE_DEFINITION &&
      def.kind !== Kind.INTERFACE_TYPE_EXTENSION
    )
      continue;
    const typeName = def.name.value;
    if (def.directives?.some((d) => d.name.value === directive)) types.add(typeName);
    if (isOversight(def.directives)) oversight.add(typeName);
    for (const f of def.fields ?? []) {
      if (f.directives?.some((d) => d.name.value === directive)) fields.add(`${typeName}.${f.name.value}`);
      if (isOversight(f.directives)) oversight.add(`${typeName}.${f.name.value}`);
    }
  }
  return { types, fields, oversight };
}

export function mergeMarks(...all: Marks[]): Marks {
  return {
    types: new Set(all.flatMap((m) => [...m.types])),
    fields: new Set(all.flatMap((m) => [...m.fields])),
    oversight: new Set(all.flatMap((m) => [...(m.oversight ?? [])])),
  };
}
