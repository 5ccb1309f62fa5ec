/**
 * The gateway's one operation pipeline. Every operation, over HTTP (queries, mutations) or over
 * WebSocket (subscriptions), goes through the same steps in the same order:
 *
 *   authenticate -> parse -> validate -> fence -> plan -> execute
 *
 * - authenticate: context.ts Authenticator, from the HTTP Authorization header or the WebSocket
 *   connection_init payload; an invalid token is refused, never taken as anonymous;
 * - parse and validate: Apollo Server's request pipeline, with the hardening's limits (token count
 *   first, then depth, aliases, directives, cost) and the preflight below; a caller whose purpose
 *   is not `payments` is validated against the contract schema (the API without payment-only
 *   types and fields), so its errors never name what it may not see;
 * - fence: the contract validation's verdict first (enforceContract), then trusted documents
 *   (trusted-documents.ts: in required mode only the manifest's operations run; a refusal of a
 *   document selecting payment-only data is recorded), then the data-use fence's operation check
 *   and audit (fence/adapters/gateway-plugin.ts), whose last checks are the shape of the
 *   operation (a subscription over HTTP) and the mutation rate limit;
 * - plan: @apollo/gateway plans queries and mutations itself (the fence vetoes its plans through
 *   queryPlanHook); subscriptions are planned here and vetoed by the same Fence.vetoPlan;
 * - execute: @apollo/gateway for queries and mutations; for subscriptions, the bridge
 *   (subscription-bridge.ts) executes the rest of the plan for each event.
 *
 * Both transports run through one ApolloServer and its plugins (HTTP with executeHTTPGraphQLRequest,
 * WebSocket with executeOperation), so a refusal is decided, audited, coded and logged the same way
 * on either. Bad documents get 400-class errors with a code on both, never a 500 or a close.
 */
import type http from 'node:http';
import { ApolloServer, type ApolloServerPlugin, type GraphQLRequest } from '@apollo/server';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { QueryPlan } from '@apollo/query-planner';
import { GraphQLError, Kind, parse, type DocumentNode, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import type { Caller } from '../lib/auth.js';
import type { SubgraphName } from '../lib/config.js';
import { appError, badRequest, HttpError } from '../lib/errors.js';
import { executeApollo, headerRecord } from '../lib/http.js';
import type { Logger } from '../lib/log.js';
import type { ServiceKeys } from '../lib/transport/keys.js';
import { REQUEST_ID_HEADER } from '../lib/transport/signing.js';
import {
  contractIntrospection,
  contractValidation,
  enforceContract,
  enforceOperation,
  queryPlanHook,
  recordEarlyRefusal,
} from '../fence/adapters/gateway-plugin.js';
import type { Fence } from '../fence/fence.js';
import { newRequestId, type Authenticator, type GatewayContext, type PlannedSubscription } from './context.js';
import type { Hardening } from './hardening.js';
import { LIMIT_CODES, promoteLimitCode } from './limits.js';
import { MeasuredDataSource } from './metrics.js';
import type { Planner } from './planner.js';

export interface PipelineOptions {
  supergraphSdl: string;
  subgraphUrls: Readonly<Record<SubgraphName, string>>;
  /** The gateway's keys: every subgraph fetch is signed with its private key. */
  keys: ServiceKeys;
  production: boolean;
  logger: Logger;
  auth: Authenticator;
  fence: Fence;
  hardening: Hardening;
  planner: Planner;
  /** Benchmarks only: no fence steps (refused in production). */
  withoutFence?: boolean;
}

/** A subscription the pipeline accepted: who asked, and what the bridge needs to run it. */
export interface AcceptedSubscription {
  caller: Caller;
  requestId: string;
  subscription: PlannedSubscription;
}

export interface OperationPipeline {
  readonly apollo: ApolloServer<GatewayContext>;
  /** HTTP: one request to /graphql (POST or GET), body already read. */
  http(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void>;
  /** WebSocket: one `subscribe` message of a connection whose caller was authenticated. */
  subscribe(request: GraphQLRequest, caller: Caller, address?: string): Promise<{ accepted: AcceptedSubscription } | { errors: GraphQLError[] }>;
  /** WebSocket: a `subscribe` message refused by the subscription server itself (its own limits), recorded like any refusal. */
  refused(request: GraphQLRequest, caller: Caller, code: string, address?: string): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const HTTP_ONLY = 'Only subscriptions are served over WebSocket; send queries and mutations over HTTP POST.';
const WS_ONLY = 'Subscriptions are served over WebSocket (graphql-ws, subprotocol graphql-transport-ws) on this same /graphql URL, not over HTTP.';

/**
 * graphql-js's single-root-field rule evaluates @skip/@include on a subscription's root fields
 * without the variables and throws instead of reporting (a 500, or a 4500 close). The GraphQL
 * spec does not allow them there (graphql-js 17 reports it): refused here, before validation.
 */
export function subscriptionRootDirective(query: string): string | null {
  if (!/\bsubscription\b/.test(query)) return null;
  let doc: DocumentNode;
  try {
    doc = parse(query, { noLocation: true });
  } catch {
    return null; // the pipeline's own parse reports syntax errors
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const conditional = (set: SelectionSetNode, seen: Set<string>): boolean =>
    set.selections.some((sel) => {
      if (sel.directives?.some((d) => d.name.value === 'skip' || d.name.value === 'include')) return true;
      if (sel.kind === Kind.INLINE_FRAGMENT) return conditional(sel.selectionSet, seen);
      if (sel.kind === Kind.FRAGMENT_SPREAD && !seen.has(sel.name.value)) {
        const f = fragments.get(sel.name.value);
        return f ? conditional(f.selectionSet, new Set([...seen, sel.name.value])) : false;
      }
      return false;
    });
  for (const d of doc.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION && d.operation === 'subscription' && conditional(d.selectionSet, new Set())) {
      return `Subscription${d.name ? ` "${d.name.value}"` : ''} must not use @skip or @include on its root field.`;
    }
  }
  return null;
}

function unknownOperation(operationName: string | null | undefined): GraphQLError {
  return appError(
    'OPERATION_RESOLUTION_FAILURE',
    operationName ? `Unknown operation named "${operationName}".` : 'The document has several operations: give operationName to choose one.',
    { http: { status: 400 } },
  );
}

/** The checks that run before Apollo parses: token count (hardening) and the preflight above. */
function precheck(hardening: Hardening) {
  return (parsed: unknown, search: string) => {
    hardening.inspect(parsed, search);
    const bodies = Array.isArray(parsed) ? parsed : [parsed];
    const queries = [...bodies.map((b) => (b && typeof b === 'object' ? (b as { query?: unknown }).query : null)), new URLSearchParams(search).get('query')];
    for (const q of queries) {
      const problem = typeof q === 'string' ? subscriptionRootDirective(q) : null;
      if (problem) throw new HttpError(400, problem, 'GRAPHQL_VALIDATION_FAILED');
    }
  };
}

export function createPipeline(opts: PipelineOptions): OperationPipeline {
  if (opts.withoutFence && opts.production) throw new Error('benchmarkWithoutFence is refused in production');
  const { fence, hardening, planner } = opts;
  const fenced = opts.withoutFence !== true;

  /** Plan and veto a subscription (after the fence), coercing its variables for the bridge. */
  function planSubscription(
    document: DocumentNode,
    source: string,
    operationName: string | null,
    request: GraphQLRequest,
    context: GatewayContext,
  ): PlannedSubscription {
    const op = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION && (operationName === null || d.name?.value === operationName));
    const coerced = getVariableValues(
      planner.apiGraphQLSchema,
      op && op.kind === Kind.OPERATION_DEFINITION ? (op.variableDefinitions ?? []) : [],
      request.variables ?? {},
    );
    if (coerced.errors) throw coerced.errors[0]!;
    let plan: QueryPlan;
    try {
      plan = planner.plan(document, source, operationName);
    } catch (err) {
      throw badRequest(`The subscription could not be planned: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (plan.node?.kind !== 'Subscription') throw appError('INTERNAL_SERVER_ERROR', 'The subscription has no subscription plan.');
    if (fenced) fence.vetoPlan(plan, { document, source, operationName, caller: context.caller, requestId: context.requestId });
    return { plan: plan as PlannedSubscription['plan'], variables: coerced.coerced, document, operationName: operationName ?? undefined };
  }

  /**
   * Records a refusal by the preflight (before Apollo) of a document selecting payment-only data.
   * Not a refusal by the token limit: that document is not parsed at all, which is its point.
   */
  async function recordPrecheck(
    err: unknown,
    request: { query?: unknown; operationName?: string | null },
    caller: Caller,
    requestId: string,
    layer: 'gateway' | 'subscription',
    address: string | undefined,
  ): Promise<void> {
    if (!fenced || !(err instanceof HttpError) || err.code === LIMIT_CODES.maxTokens || typeof request.query !== 'string') return;
    await fence.recordRefusal({
      source: request.query,
      operationName: request.operationName,
      caller,
      requestId,
      layer,
      address,
      reason: err.code ?? 'BAD_REQUEST',
    });
  }

  /** The fence and the operation's shape, in the pipeline's order (one plugin: steps in sequence). */
  const steps: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart() {
      return {
        async validationDidStart(rc) {
          return fenced ? contractValidation(fence, rc) : undefined;
        },
        async didResolveOperation(rc) {
          if (fenced) await enforceContract(fence, rc);
          if (!rc.operation) throw unknownOperation(rc.request.operationName);
          // Trusted documents next (required mode: only the manifest's operations run), before the
          // fence: an untrusted operation is refused (and recorded) and spends no rate limit.
          await hardening.trusted.check(rc, fenced ? fence : null);
          const subscription = rc.operation.operation === 'subscription';
          const { accepted, transport, caller } = rc.contextValue;
          // What may still refuse an operation the fence allows runs as the fence's last check, so
          // that the record holds the final decision (REFUSED with its code), never ALLOWED.
          const after = async (): Promise<GraphQLError | null> => {
            if (subscription && transport === 'http') return badRequest(WS_ONLY);
            if (!subscription && transport === 'ws') return badRequest(HTTP_ONLY);
            const limited = await hardening.rateLimit(rc.operation?.operation, caller);
            if (limited || !subscription || !accepted) return limited;
            try {
              accepted.subscription = planSubscription(rc.document, rc.source, rc.operationName, rc.request, rc.contextValue);
            } catch (err) {
              if (err instanceof GraphQLError) return err;
              throw err;
            }
            return null;
          };
          if (fenced) await enforceOperation(fence, rc, after);
          else {
            const refused = await after();
            if (refused) throw refused;
          }
        },
        // Refused before the fence decided (validation): still recorded when it selects payment-only data.
        async didEncounterErrors(rc) {
          if (fenced)
            await recordEarlyRefusal(fence, { ...rc, errors: rc.errors.map((e) => promoteLimitCode({ message: e.message, extensions: e.extensions })) });
        },
        async responseForOperation(rc) {
          const introspection = fenced ? await contractIntrospection(fence, rc) : null;
          if (introspection) return introspection;
          // An accepted subscription executes per event in the bridge, not here.
          if (rc.contextValue.accepted?.subscription) return { http: rc.response.http, body: { kind: 'single', singleResult: { data: null } } };
          return null;
        },
      };
    },
  };

  // No egress: unless this is set, @apollo/gateway starts an OpenTelemetry exporter that sends
  // usage data to Apollo (probing cloud metadata services on the way). paygraph sets it itself,
  // so no deployment can forget it (test/gateway/no-egress.test.ts). Every entry point sets it
  // first too (lib/no-egress.ts); this line, where the gateway reads it, also covers a gateway
  // built without an entry point (tests, embedding) and an environment changed after start-up.
  process.env.APOLLO_TELEMETRY_DISABLED = 'true';
  const gateway = new ApolloGateway({
    supergraphSdl: opts.supergraphSdl,
    buildService: ({ name }) => {
      const url = opts.subgraphUrls[name as SubgraphName];
      if (!url) throw new Error(`supergraph names a subgraph "${name}" that paygraph does not know`);
      return new MeasuredDataSource(url, opts.keys, name as SubgraphName, hardening.metrics);
    },
    __exposeQueryPlanExperimental: false,
    ...(fenced ? { experimental_didResolveQueryPlan: queryPlanHook(fence) } : {}),
  });
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    includeStacktraceInErrorResponses: false,
    // The process owner (runtime/, tests) decides when to stop, draining HTTP first.
    stopOnTerminationSignals: false,
    introspection: true,
    // No "Did you mean ...?" hints in validation errors: they would reveal payment-only field names.
    hideSchemaDetailsFromClientErrors: true,
    validationRules: hardening.validationRules,
    formatError: hardening.formatError,
    // No Apollo landing page (Apollo Sandbox loads from a CDN): the gateway serves its own GraphiQL in development (ide.ts).
    plugins: [steps, ...hardening.plugins, ApolloServerPluginLandingPageDisabled()],
  });
  const beforeApollo = precheck(hardening);

  return {
    apollo,
    async http(req, res, body) {
      const headers = headerRecord(req);
      const requestId = newRequestId(headers[REQUEST_ID_HEADER]);
      res.setHeader(REQUEST_ID_HEADER, requestId);
      const address = req.socket.remoteAddress;
      // A request refused before Apollo (the preflight) is still recorded when it selects payment-only data.
      const precheckHttp = (parsed: unknown, search: string) => {
        try {
          beforeApollo(parsed, search);
        } catch (err) {
          const bodies = (Array.isArray(parsed) ? parsed : [parsed]) as ({ query?: unknown; operationName?: unknown } | null)[];
          for (const b of bodies) {
            if (!b || typeof b.query !== 'string') continue;
            const request = { query: b.query, operationName: typeof b.operationName === 'string' ? b.operationName : undefined };
            void opts.auth
              .authenticate(headers.authorization, headers['apollographql-client-name'])
              .then((caller) => recordPrecheck(err, request, caller, requestId, 'gateway', address))
              .catch(() => undefined); // an invalid token: refused as UNAUTHENTICATED, nobody to attribute it to
          }
          throw err;
        }
      };
      await executeApollo(
        apollo,
        req,
        res,
        body,
        async () => ({
          caller: await opts.auth.authenticate(headers.authorization, headers['apollographql-client-name']),
          requestId,
          transport: 'http' as const,
          address,
          fenced: { done: false },
        }),
        precheckHttp,
      );
    },
    async subscribe(request, caller, address) {
      const requestId = newRequestId(undefined);
      try {
        beforeApollo(request, '');
      } catch (err) {
        if (err instanceof HttpError) {
          // Refused before Apollo: recorded when the document selects payment-only data.
          await recordPrecheck(err, request, caller, requestId, 'subscription', address);
          return { errors: [new GraphQLError(err.message, { extensions: { code: err.code, requestId } })] };
        }
        throw err;
      }
      const accepted: NonNullable<GatewayContext['accepted']> = {};
      const contextValue: GatewayContext = { caller, requestId, transport: 'ws', accepted, address, fenced: { done: false } };
      const response = await apollo.executeOperation(request, { contextValue });
      const result = response.body.kind === 'single' ? response.body.singleResult : response.body.initialResult;
      if (result.errors?.length || !accepted.subscription) {
        if (!result.errors?.length) return { errors: [appError('INTERNAL_SERVER_ERROR', 'The subscription was not accepted.', { requestId })] };
        return { errors: result.errors.map((e) => new GraphQLError(e.message, { extensions: e.extensions })) };
      }
      return { accepted: { caller, requestId, subscription: accepted.subscription } };
    },
    async refused(request, caller, code, address) {
      if (fenced && typeof request.query === 'string')
        await fence.recordRefusal({
          source: request.query,
          operationName: request.operationName,
          caller,
          requestId: null,
          layer: 'subscription',
          address,
          reason: code,
        });
    },
    start: () => apollo.start(),
    async stop() {
      await apollo.stop();
      await fence.stop();
    },
  };
}
