/**
 * Prometheus metrics for the gateway (prom-client), served as text at /metrics. One registry per
 * gateway instance, so several gateways in one process (tests) do not collide.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GatewayContext } from './context.js';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'paygraph_gateway_requests_total',
    help: 'GraphQL operations handled by the gateway, by operation name, type and outcome.',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'paygraph_gateway_request_duration_seconds',
    help: 'Latency of GraphQL operations through the gateway, by operation name.',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly fenceRefusals = new Counter({
    name: 'paygraph_fence_refusals_total',
    help: 'Operations refused by the data-use fence, by layer.',
    labelNames: ['layer'] as const,
    registers: [this.registry],
  });
  readonly subgraphErrors = new Counter({
    name: 'paygraph_subgraph_errors_total',
    help: 'Failed subgraph fetches (network errors, timeouts, non-2xx), by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'paygraph_gateway_' });
  }

  plugin(): ApolloServerPlugin<GatewayContext> {
    const { requests, latency } = this;
    return {
      async requestDidStart() {
        const started = process.hrtime.bigint();
        return {
          async willSendResponse({ operationName, operation, errors, response }) {
            // Operation names are client-chosen: keep label cardinality bounded.
            const name = operationName && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(operationName) ? operationName : 'anonymous';
            const type = operation?.operation ?? 'unknown';
            const bodyErrors = response.body.kind === 'single' ? response.body.singleResult.errors : undefined;
            const failed = (errors && errors.length > 0) || (bodyErrors && bodyErrors.length > 0);
            requests.inc({ operation: name, type, outcome: failed ? 'error' : 'ok' });
            latency.observe({ operation: name }, Number(process.hrtime.bigint() - started) / 1e9);
          },
        };
      },
    };
  }
}
