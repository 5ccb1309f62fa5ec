/**
 * Fence layer 3: the query plan. Whatever the operation check decided, no fetch of a plan may
 * carry payment-only data to an advertising-zone subgraph: neither in what it selects nor in the
 * entity representations it is sent (`requires`). A violation means the supergraph is wrong (the
 * composition lint, layer 1, should have refused it); the request is aborted.
 */
import type { PlanNode, QueryPlanSelectionNode, SubscriptionNode } from '@apollo/query-planner';
import { getNamedType, isInterfaceType, isObjectType, Kind, parse, type DocumentNode, type SelectionSetNode } from 'graphql';
import { collectProtected, fragmentMap, rootType, type FencePolicy } from './operation-check.js';
import { isAdvertisingZone } from './policy.js';

export interface QueryPlanViolation {
  serviceName: string;
  /**
   * Where the protected coordinates were found: the fetch's selection, its `requires`
   * (representations), or the path its representations come from (a payment-only field on it).
   */
  where: 'selection' | 'requires' | 'path';
  coordinates: string[];
}

function requiresCoordinates(policy: FencePolicy, selections: readonly QueryPlanSelectionNode[], typeName: string | null, out: Set<string>): void {
  const schema = policy.schema;
  for (const sel of selections) {
    if (sel.kind === 'InlineFragment') {
      requiresCoordinates(policy, sel.selections, sel.typeCondition ?? typeName, out);
      continue;
    }
    if (!typeName) {
      if (sel.selections) requiresCoordinates(policy, sel.selections, null, out);
      continue;
    }
    if (sel.name === '__typename') {
      if (policy.isProtectedType(typeName)) out.add(`${typeName}.__typename`);
      continue;
    }
    if (policy.isProtectedField(typeName, sel.name)) out.add(`${typeName}.${sel.name}`);
    if (sel.selections) {
      const type = schema.getType(typeName);
      const field = type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[sel.name] : undefined;
      requiresCoordinates(policy, sel.selections, field ? getNamedType(field.type).name : null, out);
    }
  }
}

/** Protected coordinates a subgraph operation (as sent by a Fetch node) selects, `_entities` included. */
function fetchCoordinates(policy: FencePolicy, operation: string | DocumentNode): string[] {
  const doc = typeof operation === 'string' ? parse(operation, { noLocation: true }) : operation;
  const fragments = fragmentMap(doc);
  const out = new Set<string>();
  for (const def of doc.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    collectProtected(policy, def.selectionSet, rootType(policy.schema, def), fragments, out);
  }
  return [...out].sort();
}

/** Layer 3, pure: the violations in a query plan (or a subscription plan: primary and rest). */
/**
 * The first payment-only field on a Flatten path (response keys from the operation's root, `@`
 * for list items), resolved against the operation the plan was built for: where a fetch's entity
 * representations come from. Null when the path crosses no protected field or cannot be resolved.
 */
function protectedOnPath(policy: FencePolicy, document: DocumentNode, path: readonly (string | number)[]): string | null {
  const ops = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (ops.length !== 1) return null; // the gateway plans one operation; several: the caller named one, and layer 2 saw them all
  const op = ops[0]!;
  const fragments = fragmentMap(document);
  // Each step: the selections in scope, with the type that owns them.
  let scope: { set: SelectionSetNode; owner: string }[] = [{ set: op.selectionSet, owner: rootType(policy.schema, op)?.name ?? '' }];
  for (const seg of path) {
    if (seg === '@' || typeof seg === 'number') continue;
    const next: { set: SelectionSetNode; owner: string }[] = [];
    const seen = new Set<string>();
    const visit = (set: SelectionSetNode, owner: string): string | null => {
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          if ((sel.alias?.value ?? sel.name.value) !== seg) continue;
          if (policy.isProtectedField(owner, sel.name.value)) return `${owner}.${sel.name.value}`;
          const type = policy.schema.getType(owner);
          const field = type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[sel.name.value] : undefined;
          if (sel.selectionSet && field) next.push({ set: sel.selectionSet, owner: getNamedType(field.type).name });
        } else {
          const frag = sel.kind === Kind.INLINE_FRAGMENT ? sel : fragments[sel.name.value];
          if (!frag || (sel.kind === Kind.FRAGMENT_SPREAD && seen.has(sel.name.value))) continue;
          if (sel.kind === Kind.FRAGMENT_SPREAD) seen.add(sel.name.value);
          const found = visit(frag.selectionSet, frag.typeCondition?.name.value ?? owner);
          if (found) return found;
        }
      }
      return null;
    };
    for (const { set, owner } of scope) {
      const found = visit(set, owner);
      if (found) return found;
    }
    scope = next;
  }
  return null;
}

export function checkQueryPlan(policy: FencePolicy, plan: { node?: PlanNode | SubscriptionNode }, document?: DocumentNode): QueryPlanViolation[] {
  const violations: QueryPlanViolation[] = [];
  let flattenPath: readonly (string | number)[] = [];
  const visit = (node: PlanNode | SubscriptionNode | undefined): void => {
    if (!node) return;
    switch (node.kind) {
      case 'Sequence':
      case 'Parallel':
        node.nodes.forEach(visit);
        return;
      case 'Flatten': {
        const outer = flattenPath;
        flattenPath = node.path as readonly (string | number)[];
        visit(node.node);
        flattenPath = outer;
        return;
      }
      case 'Condition':
        visit(node.ifClause);
        visit(node.elseClause);
        return;
      case 'Defer':
        visit(node.primary.node);
        for (const d of node.deferred) visit(d.node);
        return;
      case 'Subscription':
        visit(node.primary);
        visit(node.rest);
        return;
      case 'Fetch': {
        if (!isAdvertisingZone(node.serviceName)) return;
        let selection: string[];
        try {
          selection = fetchCoordinates(policy, node.operationDocumentNode ?? node.operation);
        } catch {
          selection = ['<unparsable fetch operation>'];
        }
        if (selection.length) violations.push({ serviceName: node.serviceName, where: 'selection', coordinates: selection });
        const required = new Set<string>();
        requiresCoordinates(policy, node.requires ?? [], null, required);
        if (required.size) violations.push({ serviceName: node.serviceName, where: 'requires', coordinates: [...required].sort() });
        // Entity representations taken from under a payment-only field tell ads whom they belong to.
        const origin = document && flattenPath.length ? protectedOnPath(policy, document, flattenPath) : null;
        if (origin) violations.push({ serviceName: node.serviceName, where: 'path', coordinates: [origin] });
        return;
      }
    }
  };
  visit(plan.node);
  return violations;
}
