/**
 * Fence layer 4: the fence inside every payments-zone subgraph. It reads the @paymentOnly marks
 * from the subgraph's own SDL and refuses any operation (including `_entities` fetches) that
 * selects one when the signed caller's purpose is not `payments`, before any resolver runs. The
 * same check serves the subgraph's HTTP endpoint (the Apollo plugin) and its graphql-ws endpoint
 * (the alerts subscriptions). Advertising-zone subgraphs hold no marks: there it does nothing.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';
import type { Caller } from '../../lib/auth.js';
import { checkOperation, policyFromSubgraph } from '../operation-check.js';
import { zoneOf } from '../policy.js';
import { forbiddenDataUse } from '../refusals.js';

export interface SubgraphFence {
  /** The refusal for `document` from `caller`, or null when it may run. */
  check(document: DocumentNode, caller: Pick<Caller, 'purpose'>): GraphQLError | null;
  /** The same check as an Apollo Server plugin for the subgraph's HTTP endpoint. */
  plugin<C extends { caller: Caller }>(): ApolloServerPlugin<C>;
}

export function subgraphFence(subgraph: string, typeDefs: DocumentNode, schema: GraphQLSchema): SubgraphFence {
  const policy = policyFromSubgraph(typeDefs, schema);
  const active = zoneOf(subgraph) === 'payments' && (policy.marks.types.size > 0 || policy.marks.fields.size > 0);
  const check = (document: DocumentNode, caller: Pick<Caller, 'purpose'>): GraphQLError | null => {
    if (!active) return null;
    const result = checkOperation(policy, document, caller);
    return result.allowed ? null : forbiddenDataUse(result.coordinates, subgraph);
  };
  return {
    check,
    plugin<C extends { caller: Caller }>(): ApolloServerPlugin<C> {
      return {
        async requestDidStart() {
          if (!active) return {};
          return {
            async didResolveOperation({ document, contextValue }) {
              const refusal = check(document, contextValue.caller);
              if (refusal) throw refusal;
            },
          };
        },
      };
    },
  };
}
