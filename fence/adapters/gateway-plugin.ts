/**
 * The fence in the gateway's Apollo Server, the steps the gateway's one operation pipeline
 * (gateway/pipeline.ts) runs for every operation, HTTP and WebSocket alike:
 * - enforceOperation (didResolveOperation): layers 2 and 5;
 * - contractIntrospection (responseForOperation): introspection by a non-payments caller;
 * - queryPlanHook: layer 3 on every plan @apollo/gateway is about to execute (subscription
 *   plans, which the pipeline builds itself, go through the same Fence.vetoPlan).
 */
import type { BaseContext, GraphQLRequestContextDidResolveOperation, GraphQLRequestContextResponseForOperation, GraphQLResponse } from '@apollo/server';
import type { Experimental_DidResolveQueryPlanCallback } from '@apollo/gateway';
import type { Caller } from '../../lib/auth.js';
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
    layer: transport === 'ws' ? 'subscription' : 'gateway',
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
