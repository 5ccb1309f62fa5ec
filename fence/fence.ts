/**
 * The Fence: the gateway's data-use decisions, for any transport. It joins the pure checks to the
 * audit and to the errors a caller sees:
 * - enforce (layers 2 and 5): checks an operation; when it touches payment-only data, appends the
 *   decision to the data-access log BEFORE anything executes (if the record cannot be written the
 *   operation is refused: fail closed); refuses a caller that may not receive it;
 * - vetoPlan (layer 3): aborts a plan that would send payment-only data to the advertising zone,
 *   and records the abort;
 * - contractSchema: the schema a non-payments caller may introspect.
 * The adapters (adapters/) plug it into Apollo Server; the gateway's one operation pipeline runs
 * HTTP and WebSocket operations through them, so both transports decide and audit identically.
 */
import type { PlanNode, QueryPlan, SubscriptionNode } from '@apollo/query-planner';
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';
import type { Caller } from '../lib/auth.js';
import type { Logger } from '../lib/log.js';
import { auditRecord, type Decision, type FenceLayer } from './audit-record.js';
import type { AuditSink } from './audit-sink.js';
import { buildContractSchema } from './contract-schema.js';
import { checkOperation, policyFromSupergraph, type FencePolicy, type OperationCheck } from './operation-check.js';
import { checkQueryPlan, type QueryPlanViolation } from './plan-check.js';
import { adThroughProtected, auditUnavailable, forbiddenDataUse, planAborted } from './refusals.js';

/** What the fence knows of one operation, whichever transport carried it. */
export interface OperationInput {
  document: DocumentNode;
  /** The document's text as the client sent it (hashed into the audit record). */
  source: string;
  operationName: string | null | undefined;
  caller: Caller;
  requestId: string | null;
  /** Which path enforced: `gateway` (HTTP) or `subscription` (WebSocket). */
  layer: Extract<FenceLayer, 'gateway' | 'subscription'>;
}

export class Fence {
  /** The API without payment-only types and fields: what a non-payments caller may introspect. */
  readonly contractSchema: GraphQLSchema;
  /** Layer-3 verdicts per plan object: plans are immutable and cached by whoever built them. */
  private readonly planCache = new WeakMap<object, readonly QueryPlanViolation[]>();

  constructor(
    readonly policy: FencePolicy,
    private readonly audit: AuditSink,
    private readonly log: Logger,
  ) {
    this.contractSchema = buildContractSchema(policy);
  }

  /** Layers 2 and 5 (see the header). Resolves with the check when the operation may run. */
  async enforce(input: OperationInput): Promise<OperationCheck> {
    const result = checkOperation(this.policy, input.document, input.caller);
    if (result.coordinates.length === 0) return result;
    // An ad path is refused whoever asks: its record names the advertising fields it reached too.
    const adFields = result.adPaths.map((p) => p.slice(p.lastIndexOf(' → ') + 3));
    const coordinates = [...new Set([...result.coordinates, ...adFields])].sort();
    const decision: Decision = { ...input, coordinates, decision: result.allowed ? 'ALLOWED' : 'REFUSED' };
    try {
      await this.audit(auditRecord(decision));
    } catch (err) {
      this.log.error(
        { fence: { decision: decision.decision, layer: decision.layer, coordinates: decision.coordinates, requestId: decision.requestId }, err: String(err) },
        '[fence] AUDIT WRITE FAILED: refusing the operation (fail closed)',
      );
      // A caller who would have been refused anyway learns nothing new from the usual refusal.
      throw result.allowed ? auditUnavailable() : this.refusal(result);
    }
    if (!result.allowed) throw this.refusal(result);
    return result;
  }

  /**
   * Layer 5 for an operation the gateway refuses before the fence decides (an untrusted document,
   * gateway/trusted-documents.ts): when it selects payment-only data, its REFUSED record is
   * appended like any other (a failed write is logged: the operation is refused either way).
   */
  async refuseUntrusted(input: OperationInput, refusal: GraphQLError): Promise<never> {
    const result = checkOperation(this.policy, input.document, input.caller);
    if (result.coordinates.length > 0) {
      const decision: Decision = { ...input, coordinates: [...result.coordinates].sort(), decision: 'REFUSED' };
      try {
        await this.audit(auditRecord(decision));
      } catch (err) {
        this.log.error(
          { fence: { decision: 'REFUSED', layer: input.layer, requestId: input.requestId }, err: String(err) },
          '[fence] could not audit an untrusted operation',
        );
      }
    }
    throw refusal;
  }

  private refusal(result: OperationCheck): GraphQLError {
    return result.adPaths.length ? adThroughProtected(result.adPaths) : forbiddenDataUse(result.coordinates);
  }

  /** Layer 3, pure and cached: every fetch to an advertising-zone subgraph, checked. */
  checkQueryPlan(plan: QueryPlan | { node?: PlanNode | SubscriptionNode }, document?: DocumentNode): QueryPlanViolation[] {
    // A plan object is built for one operation document, so its verdict is cached with it.
    let violations = this.planCache.get(plan);
    if (!violations) {
      violations = checkQueryPlan(this.policy, plan, document);
      this.planCache.set(plan, violations);
    }
    return [...violations];
  }

  /**
   * Layer 3 with its consequences: throws FORBIDDEN_DATA_USE (fence `query-plan`) when the plan
   * has a violation, after logging it and handing its record to the audit. The callers (Apollo's
   * query-plan hook, the subscription bridge) are synchronous points just before execution; the
   * abort does not wait for the record, since nothing runs either way.
   */
  vetoPlan(plan: QueryPlan | { node?: PlanNode | SubscriptionNode }, op: Omit<OperationInput, 'document' | 'layer'> & { document?: DocumentNode }): void {
    const violations = this.checkQueryPlan(plan, op.document);
    if (violations.length === 0) return;
    const coordinates = [...new Set(violations.flatMap((v) => v.coordinates))].sort();
    this.log.error(
      { fence: { violations, operationName: op.operationName ?? null, requestId: op.requestId } },
      '[fence] QUERY PLAN VIOLATION: a fetch to an advertising-zone subgraph would carry payment-only data. The supergraph is wrong; request aborted.',
    );
    void this.audit(
      auditRecord({
        caller: op.caller,
        operationName: op.operationName,
        source: op.source,
        requestId: op.requestId,
        coordinates,
        decision: 'REFUSED',
        layer: 'query-plan',
      }),
    ).catch((err: unknown) => this.log.error({ err: String(err), requestId: op.requestId }, '[fence] could not audit a query-plan abort'));
    throw planAborted(coordinates);
  }
}

export function createFence(opts: { supergraphSdl: string; audit: AuditSink; log: Logger }): Fence {
  return new Fence(policyFromSupergraph(opts.supergraphSdl), opts.audit, opts.log);
}
