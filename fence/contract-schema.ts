/**
 * The contract a non-payments caller may discover: the API schema without payment-only fields and
 * types (fence/protection.ts rules). Introspection by an advertising (or anonymous) caller runs
 * against this schema, so ad clients cannot even learn that `Account.mask` exists; introspection
 * mixed with data fields in one operation is refused, so it cannot reach the full schema.
 */
import {
  buildASTSchema,
  GraphQLSchema,
  execute,
  type GraphQLError,
  Kind,
  parse,
  printSchema,
  type DefinitionNode,
  type DocumentNode,
  type ExecutionResult,
  type FieldDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type TypeNode,
} from 'graphql';
import { badRequest } from '../lib/errors.js';
import { fragmentMap, type FencePolicy } from './operation-check.js';

function namedType(t: TypeNode): string {
  return t.kind === Kind.NAMED_TYPE ? t.name.value : namedType(t.type);
}

/**
 * The API schema minus every protected type and field (and whatever is left empty by removing them).
 * `keep` spares protected coordinates and types a caller may receive anyway (a bank's oversight
 * view, for an `oversight` caller's contract).
 */
export function buildContractSchema(policy: FencePolicy, keep: (coordinate: string) => boolean = () => false): GraphQLSchema {
  const doc = parse(printSchema(policy.schema));
  const removedTypes = new Set(policy.protectedCoordinates().types.filter((t) => !keep(t)));
  const keepField = (type: string, f: FieldDefinitionNode) =>
    (!policy.isProtectedField(type, f.name.value) || keep(`${type}.${f.name.value}`)) && !removedTypes.has(namedType(f.type));
  let defs: DefinitionNode[] = [...doc.definitions];
  // Removing fields can leave a type without fields, which removes fields returning it: to a fixpoint.
  for (;;) {
    const before = removedTypes.size;
    defs = defs.flatMap((d): DefinitionNode[] => {
      if ('name' in d && d.name && removedTypes.has(d.name.value)) return [];
      if (d.kind === Kind.OBJECT_TYPE_DEFINITION || d.kind === Kind.INTERFACE_TYPE_DEFINITION) {
        const fields = (d.fields ?? []).filter((f) => keepField(d.name.value, f));
        if (fields.length === 0) {
          removedTypes.add(d.name.value);
          return [];
        }
        const interfaces = (d.interfaces ?? []).filter((i) => !removedTypes.has(i.name.value));
        return [{ ...d, fields, interfaces }];
      }
      if (d.kind === Kind.UNION_TYPE_DEFINITION) {
        const types = (d.types ?? []).filter((t) => !removedTypes.has(t.name.value));
        if (types.length === 0) {
          removedTypes.add(d.name.value);
          return [];
        }
        return [{ ...d, types }];
      }
      return [d];
    });
    if (removedTypes.size === before) break;
  }
  // Root types that became empty (e.g. a Subscription of only payment-only events) go from the schema definition too.
  defs = defs.map((d) =>
    d.kind === Kind.SCHEMA_DEFINITION ? { ...d, operationTypes: d.operationTypes.filter((o) => !removedTypes.has(o.type.name.value)) } : d,
  );
  const built = buildASTSchema({ kind: Kind.DOCUMENT, definitions: defs }, { assumeValidSDL: false });
  // Only what the roots reach: an input, enum or payload type left behind by a removed field
  // (e.g. SendTransferInput, whose fields name accounts) is not part of the contract either.
  // (graphql-js collects the reachable types when `types` is not given.)
  const { types: _all, ...config } = built.toConfig();
  return new GraphQLSchema(config);
}

const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);

/** The root fields an operation selects, through root-level fragments. */
function rootFieldNames(set: SelectionSetNode, document: DocumentNode): string[] {
  const fragments = fragmentMap(document);
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (s: SelectionSetNode) => {
    for (const sel of s.selections) {
      if (sel.kind === Kind.FIELD) out.push(sel.name.value);
      else if (sel.kind === Kind.INLINE_FRAGMENT) walk(sel.selectionSet);
      else if (!seen.has(sel.name.value)) {
        seen.add(sel.name.value);
        const f = fragments[sel.name.value];
        if (f) walk(f.selectionSet);
      }
    }
  };
  walk(set);
  return out;
}

/** 'none': no introspection; 'only': introspection (and __typename) only; 'mixed': both kinds of root fields. */
export function introspectionKind(operation: OperationDefinitionNode | undefined, document: DocumentNode): 'none' | 'only' | 'mixed' {
  if (!operation || operation.operation !== 'query') return 'none';
  const names = rootFieldNames(operation.selectionSet, document);
  const introspective = names.filter((n) => INTROSPECTION_FIELDS.has(n));
  if (introspective.length === 0) return 'none';
  return names.every((n) => INTROSPECTION_FIELDS.has(n) || n === '__typename') ? 'only' : 'mixed';
}

/** Runs an introspection-only operation against the filtered schema. */
export async function executeFilteredIntrospection(
  filtered: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | undefined,
): Promise<ExecutionResult> {
  return execute({ schema: filtered, document, operationName: operationName ?? undefined, variableValues: variables });
}

export function mixedIntrospectionError(): GraphQLError {
  return badRequest('Introspection fields (__schema, __type) must be sent in an operation of their own.');
}
