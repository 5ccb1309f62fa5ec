/**
 * Fence layer 2 (at the gateway) and layer 4 (in every payments-zone subgraph): which protected
 * coordinates an operation selects, and whether the caller may receive them. Pure functions over
 * graphql-js ASTs and schemas; the rules are fence/protection.ts's.
 *
 * Every operation and fragment of a document is walked, not only `operationName`'s; fragments
 * (named, inline, on interfaces and unions), aliases, mutations and subscriptions are expanded;
 * fields under @skip/@include count as selected whatever the variables say. So neither variables
 * nor operationName can change a verdict, and a verdict can be cached per parsed document.
 */
import { Supergraph } from '@apollo/federation-internals';
import {
  isAbstractType,
  isInterfaceType,
  isObjectType,
  Kind,
  parse,
  getNamedType,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Caller } from '../lib/auth.js';
import { advertisingFields } from './field-zones.js';
import { readMarks, type Marks } from './marks.js';
import { mayReceive } from './policy.js';
import { Protection, schemaTypes } from './protection.js';

/**
 * The protected coordinates of one schema: what the fence checks operations against. The rules
 * are fence/protection.ts's; this adds the schema's own walk and the per-document cache.
 */
export class FencePolicy {
  private readonly protection: Protection;
  /**
   * The protected coordinates of each document already checked. The verdict depends only on the
   * document (variables and operationName never change it, see checkOperation), and Apollo Server
   * hands every request with the same query text the same cached, never-mutated DocumentNode, so a
   * document is walked once, not once per request. Weak keys: documents evicted from Apollo's
   * cache are collected with their entry.
   */
  private readonly operationCache = new WeakMap<DocumentNode, Selected>();

  constructor(
    /** The schema operations are written against (the gateway's API schema, or a subgraph schema). */
    readonly schema: GraphQLSchema,
    readonly marks: Marks,
    /** Fields only the advertising zone resolves (field-zones.ts); none in a subgraph's own schema. */
    readonly advertisingFields: ReadonlySet<string> = new Set(),
  ) {
    this.protection = new Protection(marks, schemaTypes(schema));
  }

  isProtectedType(name: string): boolean {
    return this.protection.isProtectedType(name);
  }

  isProtectedField(typeName: string, fieldName: string): boolean {
    return this.protection.isProtectedField(typeName, fieldName);
  }

  /**
   * Whether a coordinate `Type.field`, or a type `Type`, is in a bank's oversight view: marked with
   * source `oversight` (a field also when its type is).
   */
  isOversightCoordinate(coordinate: string): boolean {
    const oversight = this.marks.oversight;
    if (!oversight) return false;
    const dot = coordinate.indexOf('.');
    return oversight.has(coordinate) || (dot > 0 && oversight.has(coordinate.slice(0, dot)));
  }

  /** What `document` selects (see operationCache), computed on first sight. */
  selectedBy(document: DocumentNode): Selected {
    let selected = this.operationCache.get(document);
    if (!selected) {
      selected = Object.freeze(selectedCoordinates(this, document));
      this.operationCache.set(document, selected);
    }
    return selected;
  }

  /** Every protected type and field coordinate of the schema, sorted. */
  protectedCoordinates(): { types: string[]; fields: string[] } {
    const types: string[] = [];
    const fields: string[] = [];
    for (const type of Object.values(this.schema.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      if (this.isProtectedType(type.name)) types.push(type.name);
      if (isObjectType(type) || isInterfaceType(type)) {
        for (const f of Object.keys(type.getFields())) if (this.isProtectedField(type.name, f)) fields.push(`${type.name}.${f}`);
      }
    }
    return { types: types.sort(), fields: fields.sort() };
  }
}

/** The policy of a supergraph: marks read from the supergraph SDL, checked against its API schema. */
export function policyFromSupergraph(supergraphSdl: string): FencePolicy {
  const apiSchema = Supergraph.build(supergraphSdl).apiSchema().toGraphQLJSSchema();
  const doc = parseSdl(supergraphSdl);
  return new FencePolicy(apiSchema, readMarks(doc), advertisingFields(doc));
}

/** The policy of one subgraph: its own marks, checked against its built schema (with `_entities`). */
export function policyFromSubgraph(typeDefs: DocumentNode, schema: GraphQLSchema): FencePolicy {
  return new FencePolicy(schema, readMarks(typeDefs));
}

function parseSdl(sdl: string): DocumentNode {
  return parse(sdl, { noLocation: true });
}

/** What a document selects, as the fence sees it. */
export interface Selected {
  /**
   * Protected coordinates selected anywhere in the document (every operation, every fragment,
   * fields under @skip/@include counted as selected), sorted and unique. Empty: no protected data.
   */
  readonly coordinates: readonly string[];
  /**
   * Advertising fields reached through a payment-only field, as `Protected.field → Ad.field`
   * (e.g. `Transaction.counterparty → User.sponsoredOffers`): refused for every caller, since the
   * fetch would tell the advertising zone whom a user pays. Sorted and unique.
   */
  readonly adPaths: readonly string[];
}

export interface OperationCheck {
  coordinates: string[];
  adPaths: string[];
  /** Whether the caller may receive it: no ad path, and protected data only for `payments`. */
  allowed: boolean;
}

function possibleTypes(schema: GraphQLSchema, type: GraphQLNamedType | null | undefined): GraphQLObjectType[] {
  if (!type) return [];
  if (isObjectType(type)) return [type];
  if (isAbstractType(type)) return [...schema.getPossibleTypes(type)];
  return [];
}

/**
 * Collects the protected coordinates a selection set touches. Tolerant of documents that do not
 * validate against `policy.schema` (unknown fields are skipped, unknown type conditions still
 * narrow by name), so the query-plan check can walk subgraph fetches (`_entities`) with it.
 */
export function collectProtected(
  policy: FencePolicy,
  selectionSet: SelectionSetNode,
  parent: GraphQLCompositeType | null,
  fragments: Readonly<Record<string, FragmentDefinitionNode>>,
  out: Set<string>,
  typeName?: string,
  adPaths?: Set<string>,
): void {
  const schema = policy.schema;
  const visited = new Set<string>();
  /** `under`: the deepest protected field on the path to this selection set, if any. */
  const walk = (
    set: SelectionSetNode,
    parentType: GraphQLCompositeType | null,
    parentName: string | null,
    scope: GraphQLObjectType[],
    under: string | null,
  ) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const name = sel.name.value;
        if (name === '__schema' || name === '__type') continue; // introspection: see the introspection filter
        if (name === '__typename') {
          // A __typename under a scope that can only be protected types reveals protected data exists.
          const names = scope.length ? scope.map((t) => t.name) : parentName ? [parentName] : [];
          if (names.length && names.every((n) => policy.isProtectedType(n))) for (const n of names) out.add(`${n}.__typename`);
          continue;
        }
        const owners = [...new Set([...(parentName ? [parentName] : []), ...scope.filter((t) => t.getFields()[name]).map((t) => t.name)])];
        const protectedHere = owners.filter((t) => policy.isProtectedField(t, name)).map((t) => `${t}.${name}`);
        for (const c of protectedHere) out.add(c);
        const adHere = owners.filter((t) => policy.advertisingFields.has(`${t}.${name}`)).map((t) => `${t}.${name}`);
        if (under && adPaths) for (const c of adHere) adPaths.add(`${under} → ${c}`);
        if (!sel.selectionSet) continue;
        // Below an advertising field the path is already named; below a protected one, it is the new guard.
        const next = adHere.length ? null : (protectedHere[0] ?? under);
        let def = parentType && (isObjectType(parentType) || isInterfaceType(parentType)) ? parentType.getFields()[name] : undefined;
        for (const t of scope) def ??= t.getFields()[name];
        const named = def ? getNamedType(def.type) : null;
        if (named && (isObjectType(named) || isAbstractType(named))) walk(sel.selectionSet, named, named.name, possibleTypes(schema, named), next);
        else walk(sel.selectionSet, null, null, [], next); // unknown field (e.g. `_entities` in a fetch): type conditions decide
      } else {
        const condName = sel.kind === Kind.INLINE_FRAGMENT ? sel.typeCondition?.name.value : fragments[sel.name.value]?.typeCondition.name.value;
        const selectionSet = sel.kind === Kind.INLINE_FRAGMENT ? sel.selectionSet : fragments[sel.name.value]?.selectionSet;
        if (!selectionSet) continue;
        if (sel.kind === Kind.FRAGMENT_SPREAD) {
          const key = `${sel.name.value}|${parentName ?? ''}|${scope.map((t) => t.name).join(',')}|${under ?? ''}`;
          if (visited.has(key)) continue;
          visited.add(key);
        }
        if (!condName) {
          walk(selectionSet, parentType, parentName, scope, under);
          continue;
        }
        const cond = schema.getType(condName);
        const condScope = cond && (isObjectType(cond) || isAbstractType(cond)) ? possibleTypes(schema, cond) : [];
        const narrowed = scope.length ? scope.filter((t) => condScope.includes(t)) : condScope;
        const condType = cond && (isObjectType(cond) || isAbstractType(cond)) ? cond : null;
        walk(selectionSet, condType, condName, narrowed.length ? narrowed : condScope, under);
      }
    }
  };
  const scope = parent ? possibleTypes(schema, parent) : [];
  walk(selectionSet, parent, parent?.name ?? typeName ?? null, scope, null);
}

export function fragmentMap(document: DocumentNode): Record<string, FragmentDefinitionNode> {
  const out: Record<string, FragmentDefinitionNode> = {};
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) out[d.name.value] = d;
  return out;
}

export function rootType(schema: GraphQLSchema, op: OperationDefinitionNode): GraphQLObjectType | null {
  return (op.operation === 'query' ? schema.getQueryType() : op.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType()) ?? null;
}

/**
 * Which protected coordinates `document` selects, and whether `caller` may receive them: a
 * document that carries a protected selection anywhere is refused for a caller whose purpose is
 * not `payments`, except a bank's `oversight` caller selecting only its oversight view
 * (policy.ts mayReceive; see the header: operationName and variables cannot change the verdict).
 */
export function checkOperation(policy: FencePolicy, document: DocumentNode, caller: Pick<Caller, 'purpose'> | null | undefined): OperationCheck {
  const selected = policy.selectedBy(document);
  const coordinates = [...selected.coordinates];
  const adPaths = [...selected.adPaths];
  return { coordinates, adPaths, allowed: adPaths.length === 0 && mayReceive(caller?.purpose, coordinates, (c) => policy.isOversightCoordinate(c)) };
}

/** Every protected coordinate `document` selects, sorted (uncached; see FencePolicy.coordinatesOf). */
function selectedCoordinates(policy: FencePolicy, document: DocumentNode): Selected {
  const fragments = fragmentMap(document);
  const out = new Set<string>();
  const adPaths = new Set<string>();
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    const root = rootType(policy.schema, def);
    collectProtected(
      policy,
      def.selectionSet,
      root,
      fragments,
      out,
      def.operation === 'query' ? 'Query' : def.operation === 'mutation' ? 'Mutation' : 'Subscription',
      adPaths,
    );
  }
  // Fragments that no operation spreads are invalid GraphQL anyway; check them too, by their type.
  for (const frag of Object.values(fragments)) {
    const type = policy.schema.getType(frag.typeCondition.name.value);
    collectProtected(
      policy,
      frag.selectionSet,
      type && (isObjectType(type) || isAbstractType(type)) ? type : null,
      fragments,
      out,
      frag.typeCondition.name.value,
      adPaths,
    );
  }
  return { coordinates: [...out].sort(), adPaths: [...adPaths].sort() };
}
