/**
 * The Fence: the gateway's data-use decisions, for any transport. It joins the pure checks to the
 * audit and to the errors a caller sees:
 * - enforce (layers 2 and 5): checks an operation; when it touches payment-only data, appends the
 *   decision to the data-access log BEFORE anything executes (if the record cannot be written the
 *   operation is refused: fail closed); refuses a caller that may not receive it;
 * - vetoPlan (layer 3): aborts a plan that would send payment-only data to the advertising zone,
 *   and records the abort;
 * - contractErrors (layer 2, before the rest): a non-payments caller's document validated against
 *   the contract schema, so its errors never name a payment-only type, field or input field (the
 *   refusal is recorded by recordRefusal, like every refusal before the fence decided);
 * - contractSchema: the schema a non-payments caller is validated against and may introspect.
 * The adapters (adapters/) plug it into Apollo Server; the gateway's one operation pipeline runs
 * HTTP and WebSocket operations through them, so both transports decide and audit identically.
 */
import type { PlanNode, QueryPlan, SubscriptionNode } from '@apollo/query-planner';
import { GraphQLError, Kind, parse, specifiedRules, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Caller } from '../lib/auth.js';
import type { Logger } from '../lib/log.js';
import { auditRecord, type Decision, type FenceLayer } from './audit-record.js';
import type { AuditSink } from './audit-sink.js';
import { buildContractSchema } from './contract-schema.js';
import { checkOperation, policyFromSupergraph, type FencePolicy, type OperationCheck } from './operation-check.js';
import { checkQueryPlan, type QueryPlanViolation } from './plan-check.js';
import { mayReceivePaymentOnly } from './policy.js';
import { RefusalGuard, type RefusalGuardOptions } from './refusal-guard.js';
import { adThroughProtected, auditUnavailable, forbiddenDataUse, planAborted, refusedAttemptsLimited } from './refusals.js';

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
  /** The client's network address: what refused attempts of unauthenticated callers are bounded by. */
  address?: string | null;
}

/**
 * A check that runs after the fence allowed an operation and may still refuse it (e.g. the
 * mutation rate limit, counted in Redis when the gateways share one: hence it may be async).
 */
export type LaterCheck = () => GraphQLError | null | Promise<GraphQLError | null>;

const codeOf = (err: GraphQLError): string => String(err.extensions?.code ?? 'REFUSED');

/**
 * Operations of a kind the schema has no root type for (graphql-js 16 finds this only when
 * executing; 17 adds a validation rule): the contract has no mutation and no subscription type.
 */
function missingRootTypes(schema: GraphQLSchema, document: DocumentNode): GraphQLError[] {
  const errors: GraphQLError[] = [];
  for (const d of document.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION || schema.getRootType(d.operation)) continue;
    errors.push(new GraphQLError(`Schema is not configured to execute ${d.operation} operation.`, { nodes: d }));
  }
  return errors;
}

export class Fence {
  /** The API without payment-only types and fields: what a non-payments caller may introspect. */
  readonly contractSchema: GraphQLSchema;
  /** The same plus a bank's oversight view: what an `oversight` caller may introspect. */
  readonly oversightContractSchema: GraphQLSchema;
  /** Layer-3 verdicts per plan object: plans are immutable and cached by whoever built them. */
  private readonly planCache = new WeakMap<object, readonly QueryPlanViolation[]>();

  constructor(
    readonly policy: FencePolicy,
    private readonly audit: AuditSink,
    private readonly log: Logger,
    private readonly guard: RefusalGuard | null = null,
  ) {
    this.contractSchema = buildContractSchema(policy);
    this.oversightContractSchema = buildContractSchema(policy, (c) => policy.isOversightCoordinate(c));
  }

  /** The schema a non-payments caller of this purpose may introspect. */
  contractSchemaFor(purpose: Caller['purpose']): GraphQLSchema {
    return purpose === 'oversight' ? this.oversightContractSchema : this.contractSchema;
  }

  /**
   * A non-payments caller's document, validated against its contract schema (the API without
   * payment-only types and fields; for a bank's `oversight` caller, plus its oversight view). Null when the caller may receive payment-only data or the
   * document is valid there; otherwise the errors that caller gets, as if the protected parts of
   * the API did not exist. Synchronous: Apollo's validation end hook, which uses it, is not awaited.
   */
  contractErrors(document: DocumentNode, caller: OperationInput['caller']): GraphQLError[] | null {
    if (mayReceivePaymentOnly(caller.purpose)) return null;
    const contract = this.contractSchemaFor(caller.purpose);
    const errors = [...missingRootTypes(contract, document), ...validate(contract, document, specifiedRules)];
    if (errors.length === 0) return null;
    // No "Did you mean ...?": a suggestion names what the caller did not type (as Apollo's own
    // hideSchemaDetailsFromClientErrors does, for the full API's errors).
    for (const e of errors) e.message = e.message.replace(/ ?Did you mean(.+?)\?$/, '');
    return errors;
  }

  /**
   * Layers 2 and 5 (see the header). Resolves with the check when the operation may run. `later`
   * is what may still refuse an allowed operation (the mutation rate limit): it runs before the
   * record is written, so the record holds the final decision (REFUSED with its reason).
   */
  async enforce(input: OperationInput, later?: LaterCheck): Promise<OperationCheck> {
    const result = checkOperation(this.policy, input.document, input.caller);
    if (result.coordinates.length === 0) {
      const refused = await later?.();
      if (refused) throw refused;
      return result;
    }
    // An ad path is refused whoever asks: its record names the advertising fields it reached too.
    const adFields = result.adPaths.map((p) => p.slice(p.lastIndexOf(' → ') + 3));
    const coordinates = [...new Set([...result.coordinates, ...adFields])].sort();
    const afterwards = result.allowed ? ((await later?.()) ?? null) : null;
    const refusal = result.allowed ? afterwards : this.refusal(result);
    const decision: Decision = { ...input, coordinates, decision: refusal ? 'REFUSED' : 'ALLOWED', reason: refusal ? codeOf(refusal) : null };
    if (refusal && input.caller.userId === null && input.address && this.guard) {
      // An unauthenticated caller's refused attempt: bounded per address, repeats coalesced.
      const admission = await this.guard.admit(input.address, auditRecord(decision)).catch((err: unknown) => {
        this.log.error({ err: String(err), requestId: input.requestId }, '[fence] AUDIT WRITE FAILED for a refused attempt');
        return 'recorded' as const;
      });
      throw admission === 'limited' ? refusedAttemptsLimited() : refusal;
    }
    try {
      await this.audit(auditRecord(decision));
    } catch (err) {
      this.log.error(
        { fence: { decision: decision.decision, layer: decision.layer, coordinates: decision.coordinates, requestId: decision.requestId }, err: String(err) },
        '[fence] AUDIT WRITE FAILED: refusing the operation (fail closed)',
      );
      // A caller who would have been refused anyway learns nothing new from the usual refusal.
      throw refusal ?? auditUnavailable();
    }
    if (refusal) throw refusal;
    return result;
  }

  /**
   * Records an operation refused before the fence decided (validation, the WebSocket server's
   * own limits, a refused subscribe), when its document selects payment-only data: so that every
   * decision about such data is in the log, with its reason. Never throws: the caller is refused
   * anyway, and a document that does not parse selects nothing. Resolves `limited` when an
   * unauthenticated caller's attempt was over its budget (counted, not recorded on its own: the
   * caller may be told RATE_LIMITED).
   */
  async recordRefusal(input: Omit<OperationInput, 'document'> & { document?: DocumentNode | null; reason: string }): Promise<'limited' | null> {
    let document = input.document ?? null;
    try {
      document ??= parse(input.source, { noLocation: true });
      const result = checkOperation(this.policy, document, input.caller);
      const adFields = result.adPaths.map((p) => p.slice(p.lastIndexOf(' → ') + 3));
      const coordinates = [...new Set([...result.coordinates, ...adFields])].sort();
      if (coordinates.length === 0) return null;
      // Refused before Apollo resolved it: the name is the document's only operation's, if any.
      const ops = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
      const operationName = input.operationName ?? (ops.length === 1 && ops[0]!.kind === Kind.OPERATION_DEFINITION ? (ops[0]!.name?.value ?? null) : null);
      const record = auditRecord({ ...input, operationName, coordinates, decision: 'REFUSED' });
      if (input.caller.userId === null && input.address && this.guard) return (await this.guard.admit(input.address, record)) === 'limited' ? 'limited' : null;
      await this.audit(record);
    } catch (err) {
      if (document) this.log.error({ err: String(err), requestId: input.requestId }, '[fence] could not audit a refused operation');
    }
    return null;
  }

  /** Appends the counts the refusal guard still holds. */
  async stop(): Promise<void> {
    await this.guard?.stop();
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
        reason: 'FORBIDDEN_DATA_USE',
      }),
    ).catch((err: unknown) => this.log.error({ err: String(err), requestId: op.requestId }, '[fence] could not audit a query-plan abort'));
    throw planAborted(coordinates);
  }
}

export function createFence(opts: { supergraphSdl: string; audit: AuditSink; log: Logger; refusals?: RefusalGuardOptions | false }): Fence {
  const guard = opts.refusals === false ? null : new RefusalGuard(opts.audit, opts.log, opts.refusals ?? {});
  return new Fence(policyFromSupergraph(opts.supergraphSdl), opts.audit, opts.log, guard);
}
