/**
 * Production hardening for the gateway, in one place: request limits (graphql-armor), per-user
 * mutation rate limits, structured request logs with request ids, client-safe errors and metrics.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError, GraphQLFormattedError, ValidationRule } from 'graphql';
import type { Logger } from '../lib/log.js';
import type { GatewayContext } from './context.js';
import { isClientSafe } from '../lib/errors.js';
import { armor, checkTokenLimit, DEFAULT_LIMITS, promoteLimitCode, type LimitsConfig } from './limits.js';
import { createMutationRateLimiter, mutationRateLimit, type MutationRateLimiter } from './rate-limit.js';
import { GatewayMetrics } from './metrics.js';
import { createTrustedDocuments, type PersistedQueryManifest, type TrustedDocuments, type TrustedDocumentsMode } from './trusted-documents.js';

export interface HardeningOptions {
  production: boolean;
  logger: Logger;
  limits?: Partial<LimitsConfig>;
  /** Redis for the mutation rate limit shared by every gateway (rate-limit.ts); unset: this process's memory. */
  rateLimitRedisUrl?: string;
  /** What tells this deployment's counters from others' in a shared Redis (rate-limit.ts). */
  rateLimitScope?: string;
  /** Trusted documents (trusted-documents.ts): the manifest, and whether only its operations run. Default: an empty manifest, any document. */
  trustedDocuments?: { mode: TrustedDocumentsMode; manifest: PersistedQueryManifest };
}

export interface Hardening {
  metrics: GatewayMetrics;
  /** The mutation rate limit (shared through Redis when configured). */
  rateLimiter: MutationRateLimiter;
  /** The trusted-documents manifest and its step (the pipeline runs it before the fence). */
  trusted: TrustedDocuments;
  /** HTTP-level checks before Apollo parses the request (token limit). */
  inspect: (parsed: unknown, search: string) => void;
  plugins: ApolloServerPlugin<GatewayContext>[];
  /** The per-user mutation rate limit: the refusal, or null (run by the pipeline as the fence's last check). */
  rateLimit(operation: string | undefined, caller: GatewayContext['caller']): Promise<GraphQLError | null>;
  validationRules: ValidationRule[];
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
}

export function createHardening(opts: HardeningOptions): Hardening {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const metrics = new GatewayMetrics();
  const trusted = createTrustedDocuments({
    ...(opts.trustedDocuments ?? { mode: 'any', manifest: { format: 'apollo-persisted-query-manifest', version: 1, operations: [] } }),
    metrics,
  });
  metrics.operationLabel = trusted.label;
  const rateLimiter = createMutationRateLimiter({
    limit: limits.mutationsPerWindow,
    windowMs: limits.mutationWindowMs,
    redisUrl: opts.rateLimitRedisUrl,
    scope: opts.rateLimitScope ?? 'default',
  });
  const protection = armor(limits, opts.production);
  const log = opts.logger;

  const requestLog: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart({ contextValue }) {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse({ operationName, operation, response, errors }) {
          const body = response.body.kind === 'single' ? response.body.singleResult : undefined;
          const codes = [...new Set((body?.errors ?? []).map((e) => String(e.extensions?.code ?? 'UNKNOWN')))];
          if (codes.includes('FORBIDDEN_DATA_USE')) metrics.fenceRefusals.inc({ layer: 'operation' });
          for (const e of body?.errors ?? []) {
            const service = e.extensions?.serviceName;
            if (typeof service === 'string') metrics.subgraphErrors.inc({ subgraph: service });
          }
          for (const e of body?.errors ?? []) {
            const code = String(e.extensions?.code ?? '');
            if (!isClientSafe(code)) {
              // The original (unmasked) error goes to the log with the request id, never to the client.
              const original = errors?.find((x) => x.message === e.message) ?? e;
              log.error(
                {
                  requestId: contextValue.requestId,
                  code,
                  err: original instanceof Error ? { message: original.message, stack: original.stack } : { message: e.message },
                  path: e.path,
                },
                'internal error',
              );
            }
          }
          log.info(
            {
              requestId: contextValue.requestId,
              operationName: operationName ?? null,
              operationType: operation?.operation ?? null,
              userId: contextValue.caller.userId,
              purpose: contextValue.caller.purpose,
              client: contextValue.caller.client,
              status: response.http.status ?? 200,
              errorCodes: codes,
              durationMs: Number(process.hrtime.bigint() - started) / 1e6,
            },
            'graphql request',
          );
        },
      };
    },
  };

  /** Every error carries the request id; internal faults lose their message in production. */
  const requestIdOnErrors: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart({ contextValue }) {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single' || !response.body.singleResult.errors) return;
          response.body.singleResult.errors = response.body.singleResult.errors.map((e) => {
            const code = String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
            const internal = !isClientSafe(code);
            const extensions = { ...e.extensions, code: internal ? 'INTERNAL_SERVER_ERROR' : code, requestId: contextValue.requestId };
            if (internal && opts.production) {
              delete (extensions as Record<string, unknown>).exception;
              delete (extensions as Record<string, unknown>).serviceName;
              return { message: `Internal server error (request id ${contextValue.requestId}).`, path: e.path, extensions };
            }
            return { ...e, extensions };
          });
        },
      };
    },
  };

  return {
    metrics,
    trusted,
    rateLimiter,
    inspect: checkTokenLimit(limits.maxTokens),
    rateLimit: mutationRateLimit(rateLimiter),
    plugins: [trusted.plugin, ...protection.plugins, metrics.plugin(), requestLog, requestIdOnErrors],
    validationRules: protection.validationRules,
    formatError: (formatted) => promoteLimitCode(formatted),
  };
}
