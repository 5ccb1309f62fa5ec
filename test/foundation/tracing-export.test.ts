/**
 * Trace export (lib/tracing.ts): off unless OTEL_EXPORTER_OTLP_ENDPOINT (or the traces-specific
 * endpoint) is set, so nothing is sent by default; when it is set, spans go by OTLP over HTTP to
 * that address and nowhere else (here a collector on loopback, under the egress guard).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { egressGuard } from '../../lib/egress-guard.mjs';
import { currentTraceparent, flushTracing, otlpTracesUrl, startTracing, stopTracing, tracer, tracingEnabled, withSpan } from '../../lib/tracing.js';
import { waitFor } from '../helpers/wait.js';

afterAll(async () => {
  await stopTracing();
});

describe('configuration', () => {
  it('reads the OTLP endpoint from the environment, the traces-specific one first', () => {
    expect(otlpTracesUrl({})).toBeUndefined();
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBeUndefined();
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' })).toBe('http://127.0.0.1:4318/v1/traces');
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/t' })).toBe('http://b:4318/t');
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
  });

  it('stays off without an endpoint: no provider, no recording span, no traceparent', async () => {
    expect(startTracing({ service: 'gateway', env: {} })).toBe(false);
    expect(tracingEnabled()).toBe(false);
    expect(tracer('payments').startSpan('probe').isRecording()).toBe(false);
    await withSpan('gateway', 'probe', {}, async (span) => {
      expect(span.isRecording()).toBe(false);
      expect(currentTraceparent()).toBeNull();
    });
  });
});

describe('OTLP export', () => {
  const received: { path: string; contentType: string; body: string }[] = [];
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: Buffer.concat(chunks).toString('latin1') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  afterAll(async () => {
    await stopTracing();
    await new Promise<void>((resolve) => collector.close(() => resolve()));
  });

  it('sends spans to the configured endpoint, and only there', async () => {
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const before = egressGuard().blocked.length;
    expect(startTracing({ service: 'gateway', env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } })).toBe(true);
    let traceparent: string | null = null;
    await withSpan('payments', 'export-probe', {}, async () => {
      traceparent = currentTraceparent();
    });
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await flushTracing();
    await waitFor(() => received.length > 0, 'an OTLP request at the collector');
    expect(received[0]!.path).toBe('/v1/traces');
    // The span's name and its service are in the export (OTLP/HTTP JSON).
    expect(received[0]!.body).toContain('export-probe');
    expect(received[0]!.body).toContain('payments');
    expect(egressGuard().blocked.length).toBe(before);
  });
});
