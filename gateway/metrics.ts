/**
 * Prometheus metrics for the gateway (prom-client), served as text at /metrics (on the public
 * port, or on a port of its own: PAYGRAPH_METRICS_PORT). One registry per gateway instance, so
 * several gateways in one process (tests) do not collide.
 *
 * Every label has a bounded set of values: operations are named by the trusted-documents manifest
 * (its names, or `unlisted`: a client-chosen operation name never becomes a label), subgraphs by
 * the supergraph, outcomes and reasons by this file. test/gateway/metrics.test.ts sends 10,000
 * distinct operation names and checks that /metrics does not grow.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditSink } from '../fence/audit-sink.js';
import type { GatewayContext } from './context.js';
import { SignedDataSource } from './data-source.js';
import { UNLISTED } from './trusted-documents.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class GatewayMetrics {
  readonly registry = new Registry();
  /** The label of an operation (its document hash): set by the hardening to the manifest's names. */
  operationLabel: (queryHash: string | undefined) => string = () => UNLISTED;
  readonly requests = new Counter({
    name: 'paygraph_gateway_requests_total',
    help: 'GraphQL operations handled by the gateway, by trusted operation name (or "unlisted"), type and outcome.',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'paygraph_gateway_request_duration_seconds',
    help: 'Latency of GraphQL operations through the gateway, by trusted operation name (or "unlisted").',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly untrustedOperations = new Counter({
    name: 'paygraph_gateway_untrusted_operations_total',
    help: 'Operations refused because they are not in the trusted-documents manifest: unknown_id (PERSISTED_QUERY_NOT_FOUND) or not_in_manifest (OPERATION_NOT_TRUSTED).',
    labelNames: ['reason'] as const,
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
  readonly subgraphFetches = new Histogram({
    name: 'paygraph_subgraph_fetch_duration_seconds',
    help: 'Latency of the gateway’s signed subgraph fetches (fail-over included), by subgraph and outcome.',
    labelNames: ['subgraph', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly signatureRejections = new Counter({
    name: 'paygraph_subgraph_signature_rejections_total',
    help: 'Signed subgraph fetches a subgraph refused as unsigned or badly signed (HTTP 401): key or clock trouble, by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });
  readonly auditFailures = new Counter({
    name: 'paygraph_fence_audit_failures_total',
    help: 'Audit records the data-use fence could not append (each refused its operation: fail closed).',
    registers: [this.registry],
  });
  readonly activeSubscriptions = new Gauge({
    name: 'paygraph_gateway_active_subscriptions',
    help: 'Client subscriptions open on this gateway (graphql-ws).',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'paygraph_gateway_' });
  }

  /** The active-subscriptions gauge reads `count` at every scrape. */
  trackSubscriptions(count: () => number): void {
    const gauge = this.activeSubscriptions;
    (gauge as unknown as { collect: () => void }).collect = () => gauge.set(count());
  }

  /** `sink`, counting the appends that fail (the failure still reaches the fence, which refuses). */
  countAuditFailures(sink: AuditSink): AuditSink {
    const failures = this.auditFailures;
    return async (record) => {
      try {
        await sink(record);
      } catch (err) {
        failures.inc();
        throw err;
      }
    };
  }

  plugin(): ApolloServerPlugin<GatewayContext> {
    const { requests, latency } = this;
    const label = (hash: string | undefined) => this.operationLabel(hash);
    return {
      async requestDidStart() {
        const started = process.hrtime.bigint();
        return {
          async willSendResponse({ queryHash, operation, errors, response }) {
            const name = label(queryHash);
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

/** The gateway's signed data source, timing every fetch into `metrics` (latency, signature rejections). */
export class MeasuredDataSource extends SignedDataSource {
  constructor(
    url: string,
    signer: ConstructorParameters<typeof SignedDataSource>[1],
    serviceName: ConstructorParameters<typeof SignedDataSource>[2],
    private readonly metrics: GatewayMetrics,
  ) {
    super(url, signer, serviceName);
    const fetcher = this.fetcher;
    const subgraph = serviceName;
    this.fetcher = (async (...args: Parameters<typeof fetcher>) => {
      const started = process.hrtime.bigint();
      let outcome = 'error';
      try {
        const response = await fetcher(...args);
        outcome = response.ok ? 'ok' : `http_${response.status}`;
        if (response.status === 401) this.metrics.signatureRejections.inc({ subgraph });
        return response;
      } finally {
        this.metrics.subgraphFetches.observe({ subgraph, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    }) as typeof fetcher;
  }
}
