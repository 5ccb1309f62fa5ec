/**
 * OpenTelemetry traces for every service: one trace follows an operation from the gateway to the
 * subgraphs, their SQL, the payments outbox, the alerts consumer and the subscription bridge
 * (docs/operations.md#tracing).
 *
 * Off unless configured: with neither OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) nor a test exporter, startTracing registers nothing, every
 * tracer is the OpenTelemetry API's no-op one and nothing is sent anywhere (no egress by default).
 * When it is set, spans go by OTLP over HTTP to that address only, which the operator chose. No
 * resource detector runs (they probe cloud metadata services) and no auto-instrumentation is
 * loaded: the spans are the ones paygraph makes itself, plus those @apollo/gateway emits once a
 * tracer provider is registered.
 *
 * One process may run several services (npm start: the gateway and the payments-zone subgraphs;
 * the tests: all six), so each service gets a tracer provider of its own, with its own
 * `service.name`, all sharing one span processor. The process's main service (`service`) is the
 * global provider, which is the one libraries trace into.
 *
 * Context travels in-process through AsyncLocalStorage and between services as a W3C
 * `traceparent` (and `tracestate`) header, never as baggage: baggage would carry arbitrary
 * key-values from caller to callee. Across the one asynchronous hop (outbox -> event feed ->
 * alerts consumer) the traceparent is stored with the outbox event, and with the alert raised
 * from it, so the consumer and the subscription bridge continue the trace.
 */
import type http from 'node:http';
import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export { context, ROOT_CONTEXT, SpanKind, type Span };

/** The W3C Trace Context header (https://www.w3.org/TR/trace-context/). */
export const TRACEPARENT_HEADER = 'traceparent';
/** The instrumentation scope of paygraph's own spans. */
const TRACER_NAME = 'paygraph';

export interface TracingOptions {
  /**
   * The main service of this process (`gateway`, a subgraph's name): the `service.name` of the
   * global tracer provider, which @apollo/gateway traces into.
   */
  service: string;
  /** Where OTEL_* is read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Tests: spans go here, each at its end, instead of OTLP (and whatever the environment says). */
  exporter?: SpanExporter;
}

interface TracingState {
  processor: SpanProcessor;
  /** One per service, by name (each its own `service.name`), all sharing `processor`. */
  providers: Map<string, BasicTracerProvider>;
}

let state: TracingState | null = null;

/** The OTLP/HTTP traces URL the environment configures, or undefined: tracing stays off. */
export function otlpTracesUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  // The signal-independent endpoint takes the signal's path (OTLP exporter specification).
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}

/**
 * Starts tracing for this process when an exporter is given or the environment configures an
 * OTLP endpoint; returns whether it did. Idempotent: a second call changes nothing.
 */
export function startTracing(opts: TracingOptions): boolean {
  if (state) return true;
  const url = opts.exporter ? undefined : otlpTracesUrl(opts.env);
  if (!opts.exporter && !url) return false;
  const processor = opts.exporter ? new SimpleSpanProcessor(opts.exporter) : new BatchSpanProcessor(new OTLPTraceExporter({ url }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  state = { processor, providers: new Map() };
  trace.setGlobalTracerProvider(providerOf(opts.service));
  return true;
}

/** Flushes what is buffered and turns tracing off (the process is stopping). */
export async function stopTracing(): Promise<void> {
  const s = state;
  if (!s) return;
  state = null;
  try {
    await s.processor.forceFlush();
    await s.processor.shutdown();
  } finally {
    trace.disable();
    propagation.disable();
    context.disable();
  }
}

/** Sends what is buffered now (tests, before reading a collector). */
export async function flushTracing(): Promise<void> {
  await state?.processor.forceFlush();
}

export function tracingEnabled(): boolean {
  return state !== null;
}

function providerOf(service: string): BasicTracerProvider {
  const s = state!;
  let provider = s.providers.get(service);
  if (!provider) {
    provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': service, 'service.namespace': 'paygraph' }),
      spanProcessors: [s.processor],
    });
    s.providers.set(service, provider);
  }
  return provider;
}

/** The tracer of `service` (its own `service.name`); the API's no-op tracer while tracing is off. */
export function tracer(service: string): Tracer {
  return state ? providerOf(service).getTracer(TRACER_NAME) : trace.getTracer(TRACER_NAME);
}

/** Whether code runs inside a recorded span: background work outside any trace opens none of its own. */
export function inTrace(ctx: Context = context.active()): boolean {
  return state !== null && trace.getSpan(ctx)?.isRecording() === true;
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent context (default: the active one; ROOT_CONTEXT starts a new trace). */
  parent?: Context;
}

/**
 * Runs `fn` in a new active span of `service`, ended when `fn` settles; an exception is recorded
 * on the span (its message only) and the span's status set to error, then rethrown.
 */
export async function withSpan<T>(service: string, name: string, opts: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!state) return fn(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  const span = tracer(service).startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes: opts.attributes }, opts.parent ?? context.active());
  try {
    return await context.with(trace.setSpan(opts.parent ?? context.active(), span), () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks `span` failed with `err` (its message and type, never a stack of bank data). */
export function failSpan(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  if (err instanceof Error) span.recordException({ name: err.name, message: err.message });
}

/** Adds the active trace context (`traceparent`, and `tracestate` if any) to `headers`. */
export function injectTraceContext(headers: Record<string, string>, ctx: Context = context.active()): void {
  if (state) propagation.inject(ctx, headers);
}

/** The trace context carried by `headers` (a parent for a server span), or ROOT_CONTEXT. */
function extractTraceContext(headers: Readonly<Record<string, string | string[] | undefined>>): Context {
  if (!state) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers);
}

/** The active span's `traceparent`, to store with work that continues later elsewhere (an outbox event); null outside a trace. */
export function currentTraceparent(ctx: Context = context.active()): string | null {
  if (!inTrace(ctx)) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier[TRACEPARENT_HEADER] ?? null;
}

/** The context a stored `traceparent` names (ROOT_CONTEXT when absent or malformed): the parent of the span continuing it. */
function contextOfTraceparent(traceparent: unknown): Context {
  if (!state || typeof traceparent !== 'string') return ROOT_CONTEXT;
  const ctx = propagation.extract(ROOT_CONTEXT, { [TRACEPARENT_HEADER]: traceparent });
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? ctx : ROOT_CONTEXT;
}

/**
 * The context to serve an incoming HTTP request in: when it carries trace context (a
 * `traceparent` from another paygraph service), a new server span of `service` continuing it,
 * ended when the response finishes (with its status code); otherwise the active context, and no
 * span, so calls outside any trace (a long poll between services) open no trace of their own.
 * The trace headers are not covered by the request's signature (lib/transport/signing.ts): they
 * only ever choose a span's parent, never what is allowed.
 */
export function serverSpanContext(service: string, req: http.IncomingMessage, res: http.ServerResponse): Context {
  const parent = extractTraceContext(req.headers);
  const remote = trace.getSpanContext(parent);
  if (!remote || !isSpanContextValid(remote)) return context.active();
  const method = req.method ?? 'GET';
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const span = tracer(service).startSpan(
    `${method} ${path}`,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
    parent,
  );
  res.once('close', () => {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500 || !res.writableFinished)
      span.setStatus({ code: SpanStatusCode.ERROR, message: res.writableFinished ? undefined : 'connection closed before the response finished' });
    span.end();
  });
  return trace.setSpan(parent, span);
}

/**
 * Runs `fn` in a consumer span of `service` continuing the trace a stored `traceparent` names
 * (work that crossed an asynchronous hop: an outbox event, an alert on its way to a subscriber);
 * a new trace when there is none. Without tracing, just runs `fn`.
 */
export function continueTrace<T>(service: string, name: string, traceparent: unknown, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!state) return fn();
  return withSpan(service, name, { kind: SpanKind.CONSUMER, parent: contextOfTraceparent(traceparent), attributes }, fn);
}
