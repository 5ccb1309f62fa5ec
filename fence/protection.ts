/**
 * The protection rules: from the @paymentOnly marks, which types and fields are payment-only.
 * ONE implementation, used by every layer: the composition lint reads it over the subgraphs' SDL
 * (sdlTypes), the operation, plan and subgraph checks and the contract schema over a built schema
 * (schemaTypes). A change here changes every layer at once, so the layers cannot disagree.
 *
 * - a type is protected when it is marked, when it implements a marked interface, or when it is a
 *   union all of whose members are protected;
 * - a field `T.f` is protected when it is marked (on T or on an interface T implements), when T is
 *   protected, or when it returns a protected type (through lists and non-null);
 * - `__typename` and other introspection fields are never protected by these rules (the operation
 *   check decides `__typename` under protected types itself).
 */
import { getNamedType, isInterfaceType, isObjectType, isUnionType, Kind, type DocumentNode, type GraphQLSchema, type TypeNode } from 'graphql';
import type { Marks } from './marks.js';

/** What the rules need to know of a schema's types, whatever the schema is written in. */
export interface TypeGraph {
  /** Interfaces a type (object or interface) implements. */
  interfacesOf(type: string): readonly string[];
  /** A union's member types; null when `type` is not a union. */
  unionMembers(type: string): readonly string[] | null;
  /** The named return type of `type.field`; undefined when there is no such field. */
  fieldType(type: string, field: string): string | undefined;
}

export class Protection {
  private readonly typeCache = new Map<string, boolean>();

  constructor(
    readonly marks: Marks,
    private readonly types: TypeGraph,
  ) {}

  isProtectedType(name: string, seen: ReadonlySet<string> = new Set()): boolean {
    const cached = this.typeCache.get(name);
    if (cached !== undefined) return cached;
    if (seen.has(name)) return false; // a union that contains itself decides nothing
    let result = this.marks.types.has(name) || this.types.interfacesOf(name).some((i) => this.marks.types.has(i));
    const members = result ? null : this.types.unionMembers(name);
    if (members) {
      const next = new Set([...seen, name]);
      result = members.length > 0 && members.every((m) => this.isProtectedType(m, next));
    }
    if (seen.size === 0) this.typeCache.set(name, result);
    return result;
  }

  isProtectedField(type: string, field: string): boolean {
    if (field.startsWith('__')) return false;
    if (this.marks.fields.has(`${type}.${field}`) || this.isProtectedType(type)) return true;
    if (this.types.interfacesOf(type).some((i) => this.marks.fields.has(`${i}.${field}`))) return true;
    const ret = this.types.fieldType(type, field);
    return ret !== undefined && this.isProtectedType(ret);
  }
}

/** The type graph of a built schema (the gateway's API schema, or a subgraph's schema). */
export function schemaTypes(schema: GraphQLSchema): TypeGraph {
  return {
    interfacesOf(name) {
      const t = schema.getType(name);
      return t && (isObjectType(t) || isInterfaceType(t)) ? t.getInterfaces().map((i) => i.name) : [];
    },
    unionMembers(name) {
      const t = schema.getType(name);
      return t && isUnionType(t) ? t.getTypes().map((m) => m.name) : null;
    },
    fieldType(name, field) {
      const t = schema.getType(name);
      const f = t && (isObjectType(t) || isInterfaceType(t)) ? t.getFields()[field] : undefined;
      return f ? getNamedType(f.type).name : undefined;
    },
  };
}

function namedType(t: TypeNode): string {
  return t.kind === Kind.NAMED_TYPE ? t.name.value : namedType(t.type);
}

/**
 * The type graph of several SDL documents taken together (every subgraph of a composition, before
 * any supergraph exists): definitions and extensions of the same type are merged.
 */
export function sdlTypes(docs: readonly DocumentNode[]): TypeGraph {
  const fields = new Map<string, Map<string, string>>();
  const interfaces = new Map<string, Set<string>>();
  const unions = new Map<string, Set<string>>();
  for (const doc of docs) {
    for (const def of doc.definitions) {
      switch (def.kind) {
        case Kind.OBJECT_TYPE_DEFINITION:
        case Kind.OBJECT_TYPE_EXTENSION:
        case Kind.INTERFACE_TYPE_DEFINITION:
        case Kind.INTERFACE_TYPE_EXTENSION: {
          const map = fields.get(def.name.value) ?? new Map<string, string>();
          for (const f of def.fields ?? []) map.set(f.name.value, namedType(f.type));
          fields.set(def.name.value, map);
          const set = interfaces.get(def.name.value) ?? new Set<string>();
          for (const i of def.interfaces ?? []) set.add(i.name.value);
          interfaces.set(def.name.value, set);
          break;
        }
        case Kind.UNION_TYPE_DEFINITION:
        case Kind.UNION_TYPE_EXTENSION: {
          const set = unions.get(def.name.value) ?? new Set<string>();
          for (const m of def.types ?? []) set.add(m.name.value);
          unions.set(def.name.value, set);
          break;
        }
        default:
          break;
      }
    }
  }
  return {
    interfacesOf: (name) => [...(interfaces.get(name) ?? [])],
    unionMembers: (name) => (unions.has(name) ? [...unions.get(name)!] : null),
    fieldType: (name, field) => fields.get(name)?.get(field),
  };
}
