/**
 * Fence layer 1: composition rules. An advertising-zone subgraph must not be able to resolve,
 * receive or reference payment-only data. What is payment-only comes from the payments-zone
 * subgraphs' @paymentOnly marks under the one set of rules (protection.ts), read over the
 * subgraphs' SDL. schema/compose.ts runs this lint before composing, so `npm run compose` fails
 * with one readable line per violation and no supergraph that breaks the fence is ever written.
 */
import { Kind, parse, type ConstDirectiveNode, type DocumentNode, type FieldDefinitionNode, type SelectionSetNode, type TypeNode } from 'graphql';
import { directiveArg, linkedDirectiveName, mergeMarks, readMarks } from './marks.js';
import { Protection, sdlTypes, type TypeGraph } from './protection.js';
import type { Zone } from './policy.js';

export interface FenceSubgraph {
  name: string;
  zone: Zone;
  typeDefs: DocumentNode;
}

export type FenceRule =
  | 'defines-protected-field'
  | 'externals-protected-field'
  | 'requires-protected-field'
  | 'provides-protected-field'
  | 'key-contains-protected-field'
  | 'returns-protected-type';

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

function objectLikeDefs(doc: DocumentNode) {
  return doc.definitions.filter(
    (d) =>
      d.kind === Kind.OBJECT_TYPE_DEFINITION ||
      d.kind === Kind.OBJECT_TYPE_EXTENSION ||
      d.kind === Kind.INTERFACE_TYPE_DEFINITION ||
      d.kind === Kind.INTERFACE_TYPE_EXTENSION,
  ) as Array<{ name: { value: string }; fields?: readonly FieldDefinitionNode[]; directives?: readonly ConstDirectiveNode[] }>;
}

/** Every field coordinate a federation field set (`@key`/`@requires`/`@provides`) reaches from `type`. */
function fieldSetCoordinates(fieldSet: string, type: string, types: TypeGraph): string[] {
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
        const ret = types.fieldType(parent, sel.name.value);
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
  const types = sdlTypes(subgraphs.map((s) => s.typeDefs));
  const protection = new Protection(marks, types);
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
        for (const c of fieldSetCoordinates(fields, type, types)) {
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
            for (const c of fieldSetCoordinates(fields, type, types)) {
              const [t, f] = c.split('.') as [string, string];
              if (protection.isProtectedField(t, f)) add('requires-protected-field', c, `${at} @requires(fields: "${fields}")`);
            }
          } else if (d.name.value === provides) {
            for (const c of fieldSetCoordinates(fields, ret, types)) {
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
