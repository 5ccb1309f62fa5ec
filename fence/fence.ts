/**
 * The data-use fence at the gateway (DESIGN.md section 3):
 * - layer 2, operation check: an Apollo Server plugin refuses, before any subgraph is called, an
 *   operation selecting payment-only fields when the caller's purpose is not `payments`;
 * - layer 3, query-plan check: `experimental_didResolveQueryPlan` aborts any plan that would send a
 *   payment-only field to an advertising-zone subgraph (selection or entity representations);
 * - layer 5, audit: every operation touching payment-only data, allowed or refused, is appended to
 *   the accounts subgraph's data-access log before execution (fail closed);
 * - introspection by a non-payments caller answers from a schema without payment-only fields.
 *
 * `checkOperation` (lib/fence.ts) is the pure check; `Fence.enforce` adds the audit and the error,
 * for the HTTP plugin here and for the subscription bridge.
 */
import { createHash } from 'node:crypto';
import type { ApolloServerPlugin, GraphQLRequestContextDidResolveOperation } from '@apollo/server';
import type { Experimental_DidResolveQueryPlanCallback } from '@apollo/gateway';
import type { PlanNode, QueryPlan, QueryPlanSelectionNode, SubscriptionNode } from '@apollo/query-planner';
import { getNamedType, GraphQLError, isInterfaceType, isObjectType, Kind, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Caller } from '../lib/auth.js';
import { checkOperation, collectProtected, forbiddenDataUse, fragmentMap, policyFromSupergraph, rootType, type FencePolicy, type OperationCheck } from './operation-check.js';
import { ANONYMOUS } from '../lib/auth.js';
import { httpRequest, type HttpResponse } from '../lib/http.js';
import { InternalCallError, isConnectionRefused } from '../lib/transport/internal-client.js';
import { REQUEST_ID_HEADER, signRequest } from '../lib/transport/signing.js';
import { isAdvertisingZone, mayReceivePaymentOnly, type DataAccessRecord } from './policy.js';
import type { GatewayContext } from '../gateway/context.js';
import { buildFilteredSchema, executeFilteredIntrospection, introspectionKind, mixedIntrospectionError } from './contract-schema.js';

export { checkOperation, forbiddenDataUse, type FencePolicy, type OperationCheck } from './operation-check.js';

/** Appends one record to the data-access log; resolves once it is committed, rejects when it could not be. */
export type AuditSink = (record: DataAccessRecord) => Promise<void>;

/** Most records one audit append carries (one multi-row INSERT: 10 columns each, well under SQLite's and PostgreSQL's bind limits). */
export const AUDIT_MAX_BATCH = 200;

/**
 * Group commit for the audit log. Each record's promise settles only when the append that carries
 * it has committed (or failed), and the operation waits for it exactly as unbatched: nothing
 * executes, and nothing is answered, before its record is durable. Records go in arrival order,
 * at most `maxBatch` per append (one HTTP call, one INSERT, one transaction), one append at a
 * time: an append starts right after the event-loop turn in which a record arrived (records of
 * the other requests handled in that turn join it), and records that arrive while it is in flight
 * go together in the next one. At low load every record goes alone, with no added wait; under
 * load the appends per second stay bounded by one round trip while the records per append grow.
 * A failed append rejects every record it carried (each of those operations is refused: fail
 * closed) and does not affect the next one.
 */
export function batchingAuditSink(append: (records: DataAccessRecord[]) => Promise<void>, maxBatch = AUDIT_MAX_BATCH): AuditSink {
  let queue: { record: DataAccessRecord; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let busy = false;
  const drain = async () => {
    try {
      while (queue.length > 0) {
        const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
        queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
        try {
          await append(batch.map((b) => b.record));
          for (const b of batch) b.resolve();
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      busy = false;
    }
  };
  return (record) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ record, resolve, reject });
      if (busy) return; // the scheduled or running drain takes it
      busy = true;
      setImmediate(() => void drain());
    });
}

/**
 * The audit sink the gateway uses: POST /internal/audit on the accounts subgraph, signed with its
 * internal key, batched by group commit (batchingAuditSink), over a keep-alive connection.
 */
export function internalAuditSink(accountsBaseUrl: string, accountsInternalKey: Buffer): AuditSink {
  return batchingAuditSink(internalAuditAppend(accountsBaseUrl, accountsInternalKey));
}

/**
 * One append of several records to the accounts subgraph's log (POST /internal/audit), resolving
 * once they are committed. `accountsBaseUrl` may list several accounts processes, comma-separated
 * (as lib/internal.ts callInternal takes them; a trailing `/graphql` on each is ignored): a refused
 * connection moves on to the next one, nothing else is retried.
 */
export function internalAuditAppend(accountsBaseUrl: string, accountsInternalKey: Buffer): (records: DataAccessRecord[]) => Promise<void> {
  const urls = accountsBaseUrl
    .split(',')
    .map((u) => u.trim().replace(/\/graphql$/, ''))
    .filter((u) => u.length > 0)
    .map((u) => `${u}/internal/audit`);
  if (urls.length === 0) throw new Error('the audit needs the accounts service URL');
  return async (records) => {
    const text = JSON.stringify({ records });
    const requestId = records.length === 1 ? records[0]!.requestId : null;
    let res: HttpResponse | undefined;
    for (let i = 0; !res; i++) {
      try {
        res = await httpRequest(urls[i]!, {
          headers: { 'content-type': 'application/json', ...signRequest(accountsInternalKey, ANONYMOUS, text), ...(requestId ? { [REQUEST_ID_HEADER]: requestId } : {}) },
          body: text,
          timeoutMs: 5_000,
        });
      } catch (err) {
        if (i + 1 < urls.length && isConnectionRefused(err)) continue;
        throw err;
      }
    }
    const out = res.body.toString('utf8');
    if (res.status !== 200) throw new InternalCallError(res.status, `internal call audit failed with ${res.status}: ${out.slice(0, 200)}`);
    const ids = (JSON.parse(out) as { ids?: unknown }).ids;
    if (!Array.isArray(ids) || ids.length !== records.length) throw new Error(`audit append answered ${Array.isArray(ids) ? ids.length : 'no'} ids for ${records.length} records`);
  };
}

export interface FenceLogger {
  error(message: string, detail?: unknown): void;
}

export interface EnforceInput {
  document: DocumentNode;
  /** The document's text as the client sent it (hashed into the audit record). */
  source: string;
  operationName: string | null | undefined;
  variables?: Readonly<Record<string, unknown>> | null;
  caller: Caller;
  requestId: string | null;
  /** Which path enforced: `gateway` (HTTP) or `subscription`. */
  layer?: string;
}

export interface QueryPlanViolation {
  serviceName: string;
  /** Where the protected coordinates were found: the fetch's selection or its `requires` (representations). */
  where: 'selection' | 'requires';
  coordinates: string[];
}

export class Fence {
  readonly filteredSchema: GraphQLSchema;
  /** Layer-3 verdicts per plan object: the gateway hands cached plans back as the same object. */
  private readonly planCache = new WeakMap<object, readonly QueryPlanViolation[]>();

  constructor(
    readonly policy: FencePolicy,
    private readonly audit: AuditSink,
    private readonly log: FenceLogger = { error: (m, d) => console.error(m, d ?? '') },
  ) {
    this.filteredSchema = buildFilteredSchema(policy);
  }

  /** The audit record for an operation the check found touching payment-only data. */
  private record(input: EnforceInput, result: OperationCheck): DataAccessRecord {
    return {
      at: new Date().toISOString(),
      userId: input.caller.userId,
      purpose: input.caller.purpose,
      client: input.caller.client,
      operationName: input.operationName ?? null,
      operationHash: createHash('sha256').update(input.source).digest('hex'),
      coordinates: result.coordinates,
      decision: result.allowed ? 'ALLOWED' : 'REFUSED',
      layer: input.layer ?? 'gateway',
      requestId: input.requestId,
    };
  }

  /** The error for an operation whose record could not be written (logged here). */
  private auditFailed(record: DataAccessRecord, err: unknown): GraphQLError {
    this.log.error('[fence] AUDIT WRITE FAILED: refusing the operation (fail closed)', { record, error: err instanceof Error ? err.message : String(err) });
    if (record.decision === 'REFUSED') return forbiddenDataUse(record.coordinates);
    return new GraphQLError('Access to payment-only data could not be audited, so it was refused. Try again later.', {
      extensions: { code: 'AUDIT_UNAVAILABLE', http: { status: 503 } },
    });
  }

  /**
   * Layers 2 and 5: checks the document, appends an audit record when it touches payment-only data
   * (before anything executes; if the record cannot be written the operation is refused), and
   * throws FORBIDDEN_DATA_USE when the caller may not receive it.
   */
  async enforce(input: EnforceInput): Promise<OperationCheck> {
    const result = checkOperation(this.policy, input.document, input.operationName, input.variables, input.caller);
    if (result.coordinates.length === 0) return result;
    const record = this.record(input, result);
    try {
      await this.audit(record);
    } catch (err) {
      throw this.auditFailed(record, err);
    }
    if (!result.allowed) throw forbiddenDataUse(result.coordinates);
    return result;
  }

  /** Layer 3: every fetch to an advertising-zone subgraph, checked for protected coordinates. */
  checkQueryPlan(plan: QueryPlan | { node?: PlanNode | SubscriptionNode }): QueryPlanViolation[] {
    // Plans are immutable once built; the walk (and any fetch parse) happens once per plan object.
    let violations = this.planCache.get(plan);
    if (!violations) {
      violations = checkQueryPlan(this.policy, plan);
      this.planCache.set(plan, violations);
    }
    return [...violations];
  }

  /** The `experimental_didResolveQueryPlan` hook: throws (vetoing the request) on any violation. */
  readonly didResolveQueryPlan: Experimental_DidResolveQueryPlanCallback = ({ queryPlan, requestContext }) => {
    const violations = this.checkQueryPlan(queryPlan);
    if (violations.length === 0) return;
    this.log.error(
      '[fence] QUERY PLAN VIOLATION: a fetch to an advertising-zone subgraph would carry payment-only data. The supergraph is wrong; request aborted.',
      { violations, operationName: requestContext.operationName ?? null, source: requestContext.source },
    );
    const coordinates = [...new Set(violations.flatMap((v) => v.coordinates))].sort();
    // The operation was logged ALLOWED by layer 2 (or never reached it, e.g. a subscription plan):
    // append the abort too. The hook is synchronous; the abort does not wait for the record.
    const caller = (requestContext.context as Partial<GatewayContext> | undefined)?.caller;
    void this.audit({
      at: new Date().toISOString(),
      userId: caller?.userId ?? null,
      purpose: caller?.purpose ?? null,
      client: caller?.client ?? null,
      operationName: requestContext.operationName ?? null,
      operationHash: createHash('sha256').update(requestContext.source ?? '').digest('hex'),
      coordinates,
      decision: 'REFUSED',
      layer: 'query-plan',
      requestId: (requestContext.context as Partial<GatewayContext> | undefined)?.requestId ?? null,
    }).catch((err: unknown) => this.log.error('[fence] could not audit a query-plan abort', err instanceof Error ? err.message : String(err)));
    throw new GraphQLError('The data-use fence aborted this request: its query plan would send payment-only data to an advertising-zone subgraph.', {
      extensions: { code: 'FORBIDDEN_DATA_USE', fence: 'query-plan', coordinates },
    });
  };
}

export function createFence(opts: { supergraphSdl: string; audit: AuditSink; log?: FenceLogger }): Fence {
  return new Fence(policyFromSupergraph(opts.supergraphSdl), opts.audit, opts.log);
}

// ---------------------------------------------------------------------------------------------
// Layer 3: the query plan
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The Apollo Server plugin (layers 2 and 5, and the introspection filter)
// ---------------------------------------------------------------------------------------------

export function fencePlugin(fence: Fence): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(rc: GraphQLRequestContextDidResolveOperation<GatewayContext>) {
          const caller = rc.contextValue.caller;
          await fence.enforce({
            document: rc.document,
            source: rc.source,
            operationName: rc.operationName,
            variables: rc.request.variables,
            caller,
            requestId: rc.contextValue.requestId,
            layer: 'gateway',
          });
          if (!mayReceivePaymentOnly(caller.purpose) && introspectionKind(rc.operation, rc.document) === 'mixed') throw mixedIntrospectionError();
        },
        async responseForOperation(rc) {
          if (mayReceivePaymentOnly(rc.contextValue.caller.purpose)) return null;
          if (introspectionKind(rc.operation, rc.document) !== 'only') return null;
          const result = await executeFilteredIntrospection(fence.filteredSchema, rc.document, rc.operationName, rc.request.variables);
          return {
            http: rc.response.http,
            body: { kind: 'single', singleResult: { data: result.data as Record<string, unknown> | null | undefined, ...(result.errors ? { errors: result.errors.map((e) => e.toJSON()) } : {}) } },
          };
        },
      };
    },
  };
}
