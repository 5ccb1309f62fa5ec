/**
 * The data-use fence's shared core: which schema coordinates are payment-only, and which of them an
 * operation selects. Pure functions over graphql-js ASTs and schemas, used by the gateway
 * (operation check, query-plan check, introspection filter, subscriptions), by every payments-zone
 * subgraph (layer 4) and, for the marks, by the composition rules (layer 1).
 *
 * Protection rules (DESIGN.md section 3):
 * - a type is protected when it is marked @paymentOnly, when it implements a marked interface, or
 *   when it is a union all of whose members are protected;
 * - a field `T.f` is protected when it is marked (on T or on an interface T implements), when T is
 *   protected, or when it returns a protected type.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { Supergraph } from '@apollo/federation-internals';
import {
  getNamedType,
  GraphQLError,
  isAbstractType,
  isInterfaceType,
  isObjectType,
  isUnionType,
  Kind,
  parse,
  type ConstDirectiveNode,
  type DirectiveNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Caller } from '../lib/auth.js';
import { FORBIDDEN_DATA_USE, PAYMENT_ONLY_DIRECTIVE, PAYMENT_ONLY_SPEC_URL, PAYMENT_PURPOSE, zoneOf } from './policy.js';

// ---------------------------------------------------------------------------------------------
// Reading @link'ed directive names and @paymentOnly marks from an SDL document
// ---------------------------------------------------------------------------------------------

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

/** The @paymentOnly marks written in one SDL document (subgraph or supergraph). */
export interface Marks {
  /** Object and interface types marked @paymentOnly. */
  types: ReadonlySet<string>;
  /** Field coordinates `Type.field` marked @paymentOnly. */
  fields: ReadonlySet<string>;
}

export function readMarks(doc: DocumentNode): Marks {
  const directive = linkedDirectiveName(doc, PAYMENT_ONLY_SPEC_URL, PAYMENT_ONLY_DIRECTIVE);
  const types = new Set<string>();
  const fields = new Set<string>();
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
    for (const f of def.fields ?? []) if (f.directives?.some((d) => d.name.value === directive)) fields.add(`${typeName}.${f.name.value}`);
  }
  return { types, fields };
}

export function mergeMarks(...all: Marks[]): Marks {
  return { types: new Set(all.flatMap((m) => [...m.types])), fields: new Set(all.flatMap((m) => [...m.fields])) };
}

// ---------------------------------------------------------------------------------------------
// The policy over a schema
// ---------------------------------------------------------------------------------------------

/** The protected coordinates of one schema: what the fence checks operations against. */
export class FencePolicy {
  private readonly typeCache = new Map<string, boolean>();
  /**
   * The protected coordinates of each document already checked. The verdict depends only on the
   * document (variables and operationName never change it, see checkOperation), and Apollo Server
   * hands every request with the same query text the same cached, never-mutated DocumentNode, so a
   * document is walked once, not once per request. Weak keys: documents evicted from Apollo's
   * cache are collected with their entry.
   */
  private readonly operationCache = new WeakMap<DocumentNode, readonly string[]>();

  constructor(
    /** The schema operations are written against (the gateway's API schema, or a subgraph schema). */
    readonly schema: GraphQLSchema,
    readonly marks: Marks,
  ) {}

  isProtectedType(name: string, seen: ReadonlySet<string> = new Set()): boolean {
    const cached = this.typeCache.get(name);
    if (cached !== undefined) return cached;
    if (seen.has(name)) return false;
    const type = this.schema.getType(name);
    let result = this.marks.types.has(name);
    if (!result && type && isObjectType(type)) result = type.getInterfaces().some((i) => this.marks.types.has(i.name));
    if (!result && type && isUnionType(type)) {
      const members = type.getTypes();
      const next = new Set([...seen, name]);
      result = members.length > 0 && members.every((m) => this.isProtectedType(m.name, next));
    }
    this.typeCache.set(name, result);
    return result;
  }

  isProtectedField(typeName: string, fieldName: string): boolean {
    if (fieldName.startsWith('__')) return false;
    if (this.marks.fields.has(`${typeName}.${fieldName}`) || this.isProtectedType(typeName)) return true;
    const type = this.schema.getType(typeName);
    if (!type || !(isObjectType(type) || isInterfaceType(type))) return false;
    if (type.getInterfaces().some((i) => this.marks.fields.has(`${i.name}.${fieldName}`))) return true;
    const field = type.getFields()[fieldName];
    return field ? this.isProtectedType(getNamedType(field.type).name) : false;
  }

  /** The cached coordinates of `document` (see operationCache), computing them on first sight. */
  coordinatesOf(document: DocumentNode): readonly string[] {
    let coordinates = this.operationCache.get(document);
    if (!coordinates) {
      coordinates = Object.freeze(selectedCoordinates(this, document));
      this.operationCache.set(document, coordinates);
    }
    return coordinates;
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
  return new FencePolicy(apiSchema, readMarks(parseSdl(supergraphSdl)));
}

/** The policy of one subgraph: its own marks, checked against its built schema (with `_entities`). */
export function policyFromSubgraph(typeDefs: DocumentNode, schema: GraphQLSchema): FencePolicy {
  return new FencePolicy(schema, readMarks(typeDefs));
}

function parseSdl(sdl: string): DocumentNode {
  return parse(sdl, { noLocation: true });
}

// ---------------------------------------------------------------------------------------------
// Operation check
// ---------------------------------------------------------------------------------------------

export type FenceDecision = 'ALLOWED' | 'REFUSED';

export interface OperationCheck {
  /**
   * Protected coordinates selected anywhere in the document (every operation, every fragment,
   * fields under @skip/@include counted as selected), sorted and unique. Empty: no protected data.
   */
  coordinates: string[];
  /** Whether the caller may receive them: only a `payments` caller may. */
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
): void {
  const schema = policy.schema;
  const visited = new Set<string>();
  const walk = (set: SelectionSetNode, parentType: GraphQLCompositeType | null, parentName: string | null, scope: GraphQLObjectType[]) => {
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
        if (parentName && policy.isProtectedField(parentName, name)) out.add(`${parentName}.${name}`);
        for (const t of scope) if (t.getFields()[name] && policy.isProtectedField(t.name, name)) out.add(`${t.name}.${name}`);
        if (!sel.selectionSet) continue;
        let def = parentType && (isObjectType(parentType) || isInterfaceType(parentType)) ? parentType.getFields()[name] : undefined;
        for (const t of scope) def ??= t.getFields()[name];
        const named = def ? getNamedType(def.type) : null;
        if (named && (isObjectType(named) || isAbstractType(named))) walk(sel.selectionSet, named, named.name, possibleTypes(schema, named));
        else walk(sel.selectionSet, null, null, []); // unknown field (e.g. `_entities` in a fetch): type conditions decide
      } else {
        const condName = sel.kind === Kind.INLINE_FRAGMENT ? sel.typeCondition?.name.value : fragments[sel.name.value]?.typeCondition.name.value;
        const selectionSet = sel.kind === Kind.INLINE_FRAGMENT ? sel.selectionSet : fragments[sel.name.value]?.selectionSet;
        if (!selectionSet) continue;
        if (sel.kind === Kind.FRAGMENT_SPREAD) {
          const key = `${sel.name.value}|${parentName ?? ''}|${scope.map((t) => t.name).join(',')}`;
          if (visited.has(key)) continue;
          visited.add(key);
        }
        if (!condName) {
          walk(selectionSet, parentType, parentName, scope);
          continue;
        }
        const cond = schema.getType(condName);
        const condScope = cond && (isObjectType(cond) || isAbstractType(cond)) ? possibleTypes(schema, cond) : [];
        const narrowed = scope.length ? scope.filter((t) => condScope.includes(t)) : condScope;
        const condType = cond && (isObjectType(cond) || isAbstractType(cond)) ? cond : null;
        walk(selectionSet, condType, condName, narrowed.length ? narrowed : condScope);
      }
    }
  };
  const scope = parent ? possibleTypes(schema, parent) : [];
  walk(selectionSet, parent, parent?.name ?? typeName ?? null, scope);
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
 * Fence layer 2 (and layer 4 in the subgraphs): which protected coordinates `document` selects,
 * and whether `caller` may receive them.
 *
 * Every operation in the document is checked, not only `operationName`: a document that carries a
 * protected selection anywhere is refused for a caller whose purpose is not `payments`. Fragments
 * (named, inline, on interfaces and unions), aliases, mutations and subscriptions are expanded;
 * fields under `@skip`/`@include` count as selected whatever the variables say, so `variables` and
 * `operationName` do not change the verdict (they are accepted for the callers' convenience).
 */
export function checkOperation(
  policy: FencePolicy,
  document: DocumentNode,
  operationName?: string | null,
  variables?: Readonly<Record<string, unknown>> | null,
  caller?: Pick<Caller, 'purpose'> | null,
): OperationCheck {
  void operationName;
  void variables;
  const coordinates = [...policy.coordinatesOf(document)];
  return { coordinates, allowed: coordinates.length === 0 || caller?.purpose === PAYMENT_PURPOSE };
}

/** Every protected coordinate `document` selects, sorted (uncached; see FencePolicy.coordinatesOf). */
function selectedCoordinates(policy: FencePolicy, document: DocumentNode): string[] {
  const fragments = fragmentMap(document);
  const out = new Set<string>();
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    const root = rootType(policy.schema, def);
    collectProtected(policy, def.selectionSet, root, fragments, out, def.operation === 'query' ? 'Query' : def.operation === 'mutation' ? 'Mutation' : 'Subscription');
  }
  // Fragments that no operation spreads are invalid GraphQL anyway; check them too, by their type.
  for (const frag of Object.values(fragments)) {
    const type = policy.schema.getType(frag.typeCondition.name.value);
    collectProtected(policy, frag.selectionSet, type && (isObjectType(type) || isAbstractType(type)) ? type : null, fragments, out, frag.typeCondition.name.value);
  }
  return [...out].sort();
}

/** The error a refused caller gets: it names every protected coordinate selected. */
export function forbiddenDataUse(coordinates: readonly string[], where = 'gateway'): GraphQLError {
  return new GraphQLError(
    `Forbidden data use: ${coordinates.join(', ')} ${coordinates.length === 1 ? 'is' : 'are'} payment-only bank data and may be selected only by a caller whose purpose is "payments".`,
    { extensions: { code: FORBIDDEN_DATA_USE, coordinates: [...coordinates], fence: where, http: { status: 403 } } },
  );
}

/**
 * Fence layer 4: an Apollo Server plugin for a payments-zone subgraph. It reads the @paymentOnly
 * marks from the subgraph's own SDL and refuses any operation (including `_entities` fetches) that
 * selects one when the signed caller's purpose is not `payments`. Advertising-zone subgraphs hold
 * no marks, so the plugin does nothing there.
 */
export function subgraphFencePlugin<TContext extends { caller: Caller }>(subgraph: string, typeDefs: DocumentNode, schema: GraphQLSchema): ApolloServerPlugin<TContext> {
  const policy = policyFromSubgraph(typeDefs, schema);
  const active = zoneOf(subgraph) === 'payments' && (policy.marks.types.size > 0 || policy.marks.fields.size > 0);
  return {
    async requestDidStart() {
      if (!active) return {};
      return {
        async didResolveOperation({ document, operationName, request, contextValue }) {
          const result = checkOperation(policy, document, operationName, request.variables, contextValue.caller);
          if (!result.allowed) throw forbiddenDataUse(result.coordinates, subgraph);
        },
      };
    },
  };
}
