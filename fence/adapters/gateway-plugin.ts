/**
 * The fence in the gateway's Apollo Server, the steps the gateway's one operation pipeline
 * (gateway/pipeline.ts) runs for every operation, HTTP and WebSocket alike:
 * - contractValidation (validationDidStart) and enforceContract (didResolveOperation): a
 *   non-payments caller's document is judged against the contract schema, so no error it gets
 *   names a payment-only type, field or input field;
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
import type { Caller } from '../../lib/auth.js';
import { getOperationAST } from 'graphql';
import { appError } from '../../lib/errors.js';
import { executeFilteredIntrospection, introspectionKind, mixedIntrospectionError } from '../contract-schema.js';
import type { Fence } from '../fence.js';
import { mayReceivePaymentOnly } from '../policy.js';

/** What the fence needs of a request's context: who is calling, the request id and the transport. */
export interface FencedContext extends BaseContext {
  caller: Caller;
  requestId: string;
  transport: 'http' | 'ws';
}

type Request<C extends BaseContext> = GraphQLRequestContextDidResolveOperation<C>;

function layerOf(transport: FencedContext['transport']): 'gateway' | 'subscription' {
  return transport === 'ws' ? 'subscription' : 'gateway';
}

/**
 * validationDidStart: when Apollo's own validation (against the full API) fails for a
 * non-payments caller, the errors it sends are replaced, in place, by the contract schema's.
 * Apollo hands this end hook the very array it then sends, and does not await it (as its own
 * hideSchemaDetailsFromClientErrors plugin relies on: @apollo/server requestPipeline and
 * plugin/disableSuggestions), so the replacement is synchronous; the refusal's audit record is
 * handed to `pending`, which the pipeline awaits before the response goes out (willSendResponse).
 * test/fence/schema-discovery.test.ts fails if Apollo ever stops behaving so.
 */
export function contractValidation<C extends FencedContext>(
  fence: Fence,
  rc: GraphQLRequestContextValidationDidStart<C>,
  pending: (audit: Promise<void>) => void,
) {
  return async (errors?: readonly Error[]): Promise<void> => {
    const { caller, requestId, transport } = rc.contextValue;
    if (!errors?.length) return;
    const contract = fence.contractErrors(rc.document, caller);
    if (!contract) return;
    (errors as Error[]).splice(0, errors.length, ...contract);
    // The operation is not resolved yet (validation failed): its name as the document gives it.
    const operationName = getOperationAST(rc.document, rc.request.operationName)?.name?.value ?? rc.request.operationName;
    pending(
      fence.auditOutsideContract({
        document: rc.document,
        source: rc.source,
        operationName,
        caller,
        requestId,
        layer: layerOf(transport),
      }),
    );
  };
}

/**
 * didResolveOperation, first: a document valid on the full API (or validated earlier for another
 * caller and taken from Apollo's document cache, which skips validation) but not on the contract
 * is refused to a non-payments caller as a validation error (its first one), like Apollo's own.
 */
export async function enforceContract<C extends FencedContext>(fence: Fence, rc: Request<C>): Promise<void> {
  const { caller, requestId, transport } = rc.contextValue;
  const errors = fence.contractErrors(rc.document, caller);
  if (!errors) return;
  await fence.auditOutsideContract({ document: rc.document, source: rc.source, operationName: rc.operationName, caller, requestId, layer: layerOf(transport) });
  throw appError('GRAPHQL_VALIDATION_FAILED', errors[0]!.message, { http: { status: 400 } });
}

/**
 * Layers 2 and 5 for one operation, after parsing and validation and before any subgraph is
 * called (Fence.enforce); a non-payments caller may not mix introspection with data fields.
 */
export async function enforceOperation<C extends FencedContext>(fence: Fence, rc: Request<C>): Promise<void> {
  const { caller, requestId, transport } = rc.contextValue;
  await fence.enforce({
    document: rc.document,
    source: rc.source,
    operationName: rc.operationName,
    caller,
    requestId,
    layer: layerOf(transport),
  });
  if (!mayReceivePaymentOnly(caller.purpose) && introspectionKind(rc.operation, rc.document) === 'mixed') throw mixedIntrospectionError();
}

/** Introspection by a non-payments caller, answered from the contract schema; null: not such a request. */
export async function contractIntrospection<C extends FencedContext>(
  fence: Fence,
  rc: GraphQLRequestContextResponseForOperation<C>,
): Promise<GraphQLResponse | null> {
  if (mayReceivePaymentOnly(rc.contextValue.caller.purpose)) return null;
  if (introspectionKind(rc.operation, rc.document) !== 'only') return null;
  const result = await executeFilteredIntrospection(fence.contractSchema, rc.document, rc.operationName, rc.request.variables);
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
