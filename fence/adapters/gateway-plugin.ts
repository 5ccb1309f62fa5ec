/**
 * The fence in the gateway's Apollo Server, the steps the gateway's one operation pipeline
 * (gateway/pipeline.ts) runs for every operation, HTTP and WebSocket alike:
 * - contractValidation (validationDidStart) and enforceContract (didResolveOperation): a
 *   non-payments caller's document is judged against the contract schema, so no error it gets
 *   names a payment-only type, field or input field (recorded by recordEarlyRefusal, and by
 *   refuseBeforeFence: any refusal of a resolved operation before the fence's own decision);
 * - enforceOperation (didResolveOperation): layers 2 and 5;
 * - contractIntrospection (responseForOperation): introspection by a non-payments caller;
 * - queryPlanHook: layer 3 on every plan @apollo/gateway is about to execute (subscription
 *   plans, which the pipeline builds itself, go through the same Fence.vetoPlan).
 */
import type {
  BaseContext,
  GraphQLRequestContextDidResolveOperation,
  GraphQLRequestContextResponseForOperation,
  GraphQLRequestContextValidationDidStart,
  GraphQLResponse,
} from '@apollo/server';
import type { Experimental_DidResolveQueryPlanCallback } from '@apollo/gateway';
import type { DocumentNode, GraphQLError } from 'graphql';
import type { Caller } from '../../lib/auth.js';
import { appError } from '../../lib/errors.js';
import { executeFilteredIntrospection, introspectionKind, mixedIntrospectionError } from '../contract-schema.js';
import type { Fence, LaterCheck, OperationInput } from '../fence.js';
import { mayReceivePaymentOnly } from '../policy.js';
import { refusedAttemptsLimited } from '../refusals.js';

/** What the fence needs of a request's context: who is calling, the request id and the transport. */
export interface FencedContext extends BaseContext {
  caller: Caller;
  requestId: string;
  transport: 'http' | 'ws';
  /** The client's network address (refused anonymous attempts are bounded by it: fence/refusal-guard.ts). */
  address?: string;
  /** Set once the fence has decided this operation (and recorded it when it touched payment-only data). */
  fenced?: { done: boolean };
}

type Request<C extends BaseContext> = GraphQLRequestContextDidResolveOperation<C>;

/**
 * validationDidStart: when Apollo's own validation (against the full API) fails for a
 * non-payments caller, the errors it sends are replaced, in place, by the contract schema's.
 * Apollo hands this end hook the very array it then sends, and does not await it (as its own
 * hideSchemaDetailsFromClientErrors plugin relies on: @apollo/server requestPipeline and
 * plugin/disableSuggestions), so the replacement is synchronous. The refusal is recorded by
 * recordEarlyRefusal (didEncounterErrors, which Apollo awaits before answering).
 * test/fence/schema-discovery.test.ts fails if Apollo ever stops behaving so.
 */
export function contractValidation<C extends FencedContext>(fence: Fence, rc: GraphQLRequestContextValidationDidStart<C>) {
  return async (errors?: readonly Error[]): Promise<void> => {
    if (!errors?.length) return;
    const contract = fence.contractErrors(rc.document, rc.contextValue.caller);
    if (contract) (errors as Error[]).splice(0, errors.length, ...contract);
  };
}

/**
 * didResolveOperation, first: a document valid on the full API (or validated earlier for another
 * caller and taken from Apollo's document cache, which skips validation) but not on the contract
 * is refused to a non-payments caller as a validation error (its first one), like Apollo's own,
 * and recorded (Fence.recordRefusal) when it selected payment-only data.
 */
export async function enforceContract<C extends FencedContext>(fence: Fence, rc: Request<C>): Promise<void> {
  const errors = fence.contractErrors(rc.document, rc.contextValue.caller);
  if (errors) await refuseBeforeFence(fence, rc, appError('GRAPHQL_VALIDATION_FAILED', errors[0]!.message, { http: { status: 400 } }));
}

/** What the fence knows of a resolved operation, from Apollo's request context. */
function operationInput<C extends FencedContext>(rc: Request<C>): OperationInput {
  const { caller, requestId, transport, address } = rc.contextValue;
  return {
    document: rc.document,
    source: rc.source,
    operationName: rc.operationName,
    caller,
    requestId,
    layer: layerOf(transport),
    address: address ?? null,
  };
}

function layerOf(transport: FencedContext['transport']): OperationInput['layer'] {
  return transport === 'ws' ? 'subscription' : 'gateway';
}

/**
 * Refuses a resolved operation before the fence's own decision (the contract validation above,
 * an untrusted document: gateway/trusted-documents.ts): marks it decided, so that
 * recordEarlyRefusal does not record it again, records it (Fence.recordRefusal, with the
 * refusal's code as reason) when it selects payment-only data, and throws `refusal`, or
 * RATE_LIMITED for an unauthenticated caller over its budget of refused attempts.
 */
export async function refuseBeforeFence<C extends FencedContext>(fence: Fence, rc: Request<C>, refusal: GraphQLError): Promise<never> {
  if (rc.contextValue.fenced) rc.contextValue.fenced.done = true;
  const admission = await fence.recordRefusal({ ...operationInput(rc), reason: String(refusal.extensions.code ?? 'REFUSED') });
  throw admission === 'limited' ? refusedAttemptsLimited() : refusal;
}

/**
 * Layers 2 and 5 for one operation, after parsing and validation and before any subgraph is
 * called (Fence.enforce, with `later`: what may still refuse it); a non-payments caller may not
 * mix introspection with data fields.
 */
export async function enforceOperation<C extends FencedContext>(fence: Fence, rc: Request<C>, later?: LaterCheck): Promise<void> {
  if (rc.contextValue.fenced) rc.contextValue.fenced.done = true;
  await fence.enforce(operationInput(rc), later);
  if (!mayReceivePaymentOnly(rc.contextValue.caller.purpose) && introspectionKind(rc.operation, rc.document) === 'mixed') throw mixedIntrospectionError();
}

/** Introspection by a non-payments caller, answered from the contract schema; null: not such a request. */
export async function contractIntrospection<C extends FencedContext>(
  fence: Fence,
  rc: GraphQLRequestContextResponseForOperation<C>,
): Promise<GraphQLResponse | null> {
  if (mayReceivePaymentOnly(rc.contextValue.caller.purpose)) return null;
  if (introspectionKind(rc.operation, rc.document) !== 'only') return null;
  const result = await executeFilteredIntrospection(
    fence.contractSchemaFor(rc.contextValue.caller.purpose),
    rc.document,
    rc.operationName,
    rc.request.variables,
  );
  return {
    http: rc.response.http,
    body: {
      kind: 'single',
      singleResult: {
        data: result.data as Record<string, unknown> | null | undefined,
        ...(result.errors ? { errors: result.errors.map((e) => e.toJSON()) } : {}),
      },
    },
  };
}

/** @apollo/gateway's `experimental_didResolveQueryPlan`: throwing vetoes the request. */
export function queryPlanHook(fence: Fence): Experimental_DidResolveQueryPlanCallback {
  return ({ queryPlan, requestContext }) => {
    const context = requestContext.context as Partial<FencedContext> | undefined;
    fence.vetoPlan(queryPlan, {
      document: requestContext.document,
      source: requestContext.source ?? '',
      operationName: requestContext.operationName ?? null,
      caller: context?.caller ?? { userId: null, purpose: null, client: null },
      requestId: context?.requestId ?? null,
    });
  };
}

/**
 * An operation refused before the fence decided it (by validation): recorded as REFUSED with the
 * error's code when its document selects payment-only data (Fence.recordRefusal).
 */
export async function recordEarlyRefusal<C extends FencedContext>(
  fence: Fence,
  rc: {
    source?: string;
    document?: DocumentNode;
    operationName?: string | null;
    request: { operationName?: string | null };
    contextValue: C;
    errors: readonly { extensions?: Record<string, unknown> }[];
  },
): Promise<void> {
  if (rc.contextValue.fenced?.done || !rc.source) return;
  const { caller, requestId, transport, address } = rc.contextValue;
  await fence.recordRefusal({
    document: rc.document ?? null,
    source: rc.source,
    operationName: rc.operationName ?? rc.request.operationName,
    caller,
    requestId,
    layer: layerOf(transport),
    address: address ?? null,
    reason: String(rc.errors[0]?.extensions?.code ?? 'GRAPHQL_VALIDATION_FAILED'),
  });
}
