/**
 * Fence layer 1: composition rules. An advertising-zone subgraph must not be able to resolve,
 * receive or reference payment-only data. Protection is known from the payments-zone subgraphs'
 * @paymentOnly marks (lib/fence.ts rules: marked fields, every field of a marked type, fields
 * returning a marked type). `composeSupergraph` runs these rules before composing, so
 * `npm run compose` fails with one readable line per violation.
 */
import { Kind, parse, type DocumentNode, type FieldDefinitionNode, type SelectionSetNode, type TypeNode } from 'graphql';
import { directiveArg, linkedDirectiveName, mergeMarks, readMarks, type Marks } from './operation-check.js';
import type { Zone } from './policy.js';

export interface FenceSubgraph {
  name: string;
  zone: Zone;
  typeDefs: DocumentNode;
}

export type FenceRule = 'defines-protected-field' | 'externals-protected-field' | 'requires-protected-field' | 'provides-protected-field' | 'key-contains-protected-field' | 'returns-protected-type';

export interface FenceViolation {
  subgraph: string;
  /** The protected coordinate reached, e.g. `Account.mask` (or a type name for returns-protected-type). */
  coordinate: string;
  rule: FenceRule;
  /** Where in the advertising subgraph, e.g. `Account.adScore`. */
  at: string;
  message: string;
}

const FEDERATION_SPEC = 'https://specs.apollo.dev/federation/v2.0';

function namedType(t: TypeNode): string {
  return t.kind === Kind.NAMED_TYPE ? t.name.value : namedType(t.type);
}

type TypeFields = Map<string, Map<string, string>>; // type -> field -> named return type
type Implements = Map<string, Set<string>>; // object type -> interfaces

function objectLikeDefs(doc: DocumentNode) {
  return doc.definitions.filter(
    (d) =>
      d.kind === Kind.OBJECT_TYPE_DEFINITION ||
      d.kind === Kind.OBJECT_TYPE_EXTENSION ||
      d.kind === Kind.INTERFACE_TYPE_DEFINITION ||
      d.kind === Kind.INTERFACE_TYPE_EXTENSION,
  ) as Array<{ name: { value: string }; fields?: readonly FieldDefinitionNode[]; interfaces?: readonly { name: { value: string } }[]; directives?: readonly import('graphql').ConstDirectiveNode[] }>;
}

/** Field return types and interfaces across every subgraph, to follow field sets into nested types. */
function typeInfo(subgraphs: readonly FenceSubgraph[]): { fields: TypeFields; impl: Implements; unions: Map<string, Set<string>> } {
  const fields: TypeFields = new Map();
  const impl: Implements = new Map();
  const unions = new Map<string, Set<string>>();
  for (const s of subgraphs) {
    for (const def of objectLikeDefs(s.typeDefs)) {
      const map = fields.get(def.name.value) ?? new Map<string, string>();
      for (const f of def.fields ?? []) map.set(f.name.value, namedType(f.type));
      fields.set(def.name.value, map);
      const set = impl.get(def.name.value) ?? new Set<string>();
      for (const i of def.interfaces ?? []) set.add(i.name.value);
      impl.set(def.name.value, set);
    }
    for (const def of s.typeDefs.definitions) {
      if (def.kind !== Kind.UNION_TYPE_DEFINITION && def.kind !== Kind.UNION_TYPE_EXTENSION) continue;
      const set = unions.get(def.name.value) ?? new Set<string>();
      for (const m of def.types ?? []) set.add(m.name.value);
      unions.set(def.name.value, set);
    }
  }
  return { fields, impl, unions };
}

/** Protection derived from marks, with the same rules as lib/fence.ts's FencePolicy. */
class Protection {
  constructor(
    private readonly marks: Marks,
    private readonly info: ReturnType<typeof typeInfo>,
  ) {}

  isProtectedType(name: string, seen: ReadonlySet<string> = new Set()): boolean {
    if (this.marks.types.has(name)) return true;
    if ([...(this.info.impl.get(name) ?? [])].some((i) => this.marks.types.has(i))) return true;
    const members = this.info.unions.get(name);
    if (members && members.size > 0 && !seen.has(name)) return [...members].every((m) => this.isProtectedType(m, new Set([...seen, name])));
    return false;
  }

  isProtectedField(type: string, field: string): boolean {
    if (field.startsWith('__')) return false;
    if (this.marks.fields.has(`${type}.${field}`) || this.isProtectedType(type)) return true;
    if ([...(this.info.impl.get(type) ?? [])].some((i) => this.marks.fields.has(`${i}.${field}`))) return true;
    const ret = this.info.fields.get(type)?.get(field);
    return ret ? this.isProtectedType(ret) : false;
  }
}

/** Every field coordinate a federation field set (`@key`/`@requires`/`@provides`) reaches from `type`. */
function fieldSetCoordinates(fieldSet: string, type: string, info: ReturnType<typeof typeInfo>): string[] {
  let set: SelectionSetNode;
  try {
    const doc = parse(`{ ${fieldSet} }`, { noLocation: true });
    const op = doc.definitions[0];
    if (!op || op.kind !== Kind.OPERATION_DEFINITION) return [];
    set = op.selectionSet;
  } catch {
    return []; // an unparsable field set is composition's error to report
  }
  const out: string[] = [];
  const walk = (s: SelectionSetNode, parent: string) => {
    for (const sel of s.selections) {
      if (sel.kind === Kind.FIELD) {
        out.push(`${parent}.${sel.name.value}`);
        const ret = info.fields.get(parent)?.get(sel.name.value);
        if (sel.selectionSet && ret) walk(sel.selectionSet, ret);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        walk(sel.selectionSet, sel.typeCondition?.name.value ?? parent);
      }
    }
  };
  walk(set, type);
  return out;
}

const RULE_TEXT: Record<FenceRule, string> = {
  'defines-protected-field': 'an advertising-zone subgraph may not define (resolve) a payment-only field',
  'externals-protected-field': 'an advertising-zone subgraph may not declare a payment-only field @external',
  'requires-protected-field': 'an advertising-zone subgraph may not @requires a payment-only field (it would receive it in entity representations)',
  'provides-protected-field': 'an advertising-zone subgraph may not @provides a payment-only field',
  'key-contains-protected-field': 'an advertising-zone subgraph may not use a @key containing a payment-only field',
  'returns-protected-type': 'an advertising-zone subgraph may not have a field returning a payment-only type',
};

/** Checks every advertising-zone subgraph against the payments zone's marks. Empty: the fence holds. */
export function checkFenceComposition(subgraphs: readonly FenceSubgraph[]): FenceViolation[] {
  const marks = mergeMarks(...subgraphs.filter((s) => s.zone === 'payments').map((s) => readMarks(s.typeDefs)));
  const info = typeInfo(subgraphs);
  const protection = new Protection(marks, info);
  const violations: FenceViolation[] = [];
  for (const sg of subgraphs) {
    if (sg.zone !== 'advertising') continue;
    const seen = new Set<string>();
    const add = (rule: FenceRule, coordinate: string, at: string) => {
      const key = `${rule}|${coordinate}|${at}`;
      if (seen.has(key)) return;
      seen.add(key);
      violations.push({
        subgraph: sg.name,
        coordinate,
        rule,
        at,
        message: `FENCE_${rule.toUpperCase().replace(/-/g, '_')}: advertising-zone subgraph "${sg.name}" reaches payment-only ${coordinate} at ${at} (rule ${rule}: ${RULE_TEXT[rule]}).`,
      });
    };
    const dir = (name: string) => linkedDirectiveName(sg.typeDefs, FEDERATION_SPEC, name);
    const [external, requires, provides, key] = [dir('external'), dir('requires'), dir('provides'), dir('key')];
    for (const def of objectLikeDefs(sg.typeDefs)) {
      const type = def.name.value;
      const typeExternal = def.directives?.some((d) => d.name.value === external) ?? false;
      for (const d of def.directives ?? []) {
        if (d.name.value !== key) continue;
        const fields = directiveArg(d, 'fields');
        if (typeof fields !== 'string') continue;
        for (const c of fieldSetCoordinates(fields, type, info)) {
          const [t, f] = c.split('.') as [string, string];
          if (protection.isProtectedField(t, f)) add('key-contains-protected-field', c, `${type} @key(fields: "${fields}")`);
        }
      }
      for (const field of def.fields ?? []) {
        const at = `${type}.${field.name.value}`;
        const isExternal = typeExternal || (field.directives?.some((d) => d.name.value === external) ?? false);
        if (protection.isProtectedField(type, field.name.value)) add(isExternal ? 'externals-protected-field' : 'defines-protected-field', at, at);
        const ret = namedType(field.type);
        if (protection.isProtectedType(ret)) add('returns-protected-type', ret, at);
        for (const d of field.directives ?? []) {
          const fields = directiveArg(d, 'fields');
          if (typeof fields !== 'string') continue;
          if (d.name.value === requires) {
            for (const c of fieldSetCoordinates(fields, type, info)) {
              const [t, f] = c.split('.') as [string, string];
              if (protection.isProtectedField(t, f)) add('requires-protected-field', c, `${at} @requires(fields: "${fields}")`);
            }
          } else if (d.name.value === provides) {
            for (const c of fieldSetCoordinates(fields, ret, info)) {
              const [t, f] = c.split('.') as [string, string];
              if (protection.isProtectedField(t, f)) add('provides-protected-field', c, `${at} @provides(fields: "${fields}")`);
            }
          }
        }
      }
    }
  }
  return violations;
}
