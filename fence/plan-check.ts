/**
 * Fence layer 3: the query plan. Whatever the operation check decided, no fetch of a plan may
 * carry payment-only data to an advertising-zone subgraph: neither in what it selects nor in the
 * entity representations it is sent (`requires`). A violation means the supergraph is wrong (the
 * composition lint, layer 1, should have refused it); the request is aborted.
 */
import type { PlanNode, QueryPlanSelectionNode, SubscriptionNode } from '@apollo/query-planner';
import { getNamedType, isInterfaceType, isObjectType, Kind, parse, type DocumentNode } from 'graphql';
import { collectProtected, fragmentMap, rootType, type FencePolicy } from './operation-check.js';
import { isAdvertisingZone } from './policy.js';

export interface QueryPlanViolation {
  serviceName: string;
  /** Where the protected coordinates were found: the fetch's selection or its `requires` (representations). */
  where: 'selection' | 'requires';
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
export function fetchCoordinates(policy: FencePolicy, operation: string | DocumentNode): string[] {
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
export function checkQueryPlan(policy: FencePolicy, plan: { node?: PlanNode | SubscriptionNode }): QueryPlanViolation[] {
  const violations: QueryPlanViolation[] = [];
  const visit = (node: PlanNode | SubscriptionNode | undefined): void => {
    if (!node) return;
    switch (node.kind) {
      case 'Sequence':
      case 'Parallel':
        node.nodes.forEach(visit);
        return;
      case 'Flatten':
        visit(node.node);
        return;
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
        return;
      }
    }
  };
  visit(plan.node);
  return violations;
}
