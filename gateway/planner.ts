/**
 * The query planner over the committed supergraph, for what @apollo/gateway does not plan itself:
 * subscriptions (it does not execute them). Plans are cached by operation text and name, so the
 * fence's plan verdict (cached per plan object) is computed once per distinct subscription.
 */
import { operationFromDocument, Supergraph, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type QueryPlan } from '@apollo/query-planner';
import type { DocumentNode, GraphQLSchema } from 'graphql';

/** Query plans kept (by operation text and name). */
export const PLAN_CACHE_SIZE = 200;

export class Planner {
  readonly apiSchema: Schema;
  readonly apiGraphQLSchema: GraphQLSchema;
  readonly supergraphSchema: GraphQLSchema;
  private readonly planner: QueryPlanner;
  private readonly cache = new Map<string, QueryPlan>();

  constructor(supergraphSdl: string) {
    const supergraph = Supergraph.build(supergraphSdl);
    this.apiSchema = supergraph.apiSchema();
    this.apiGraphQLSchema = this.apiSchema.toGraphQLJSSchema();
    this.supergraphSchema = supergraph.schema.toGraphQLJSSchema();
    this.planner = new QueryPlanner(supergraph);
  }

  plan(document: DocumentNode, source: string, operationName: string | null | undefined): QueryPlan {
    const key = `${operationName ?? ''}\n${source}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const plan = this.planner.buildQueryPlan(operationFromDocument(this.apiSchema, document, { operationName: operationName ?? undefined }));
    if (this.cache.size >= PLAN_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, plan);
    return plan;
  }
}
