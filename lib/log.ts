/**
 * Structured JSON logs (pino) for every service. Request ids travel from the gateway to the
 * subgraphs in `x-request-id`. We never log variables, results, headers or tokens; the redaction
 * list is a second line of defence for anything that slips into a log object by name.
 *
 * Inside a trace (lib/tracing.ts) every line also carries `traceId` and `spanId`, the ids of the
 * active span, so a log line leads to its trace and back. Outside one (and always while tracing
 * is off) lines carry neither.
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'authorization',
  'token',
  'jwt',
  'secret',
  'password',
  'mask',
  'amount',
  'amountMinor',
  'balance',
  'variables',
  'headers',
  '*.authorization',
  '*.token',
  '*.mask',
  '*.amount',
  '*.amountMinor',
  '*.balance',
  '*.variables',
  '*.headers',
];

export interface LogOptions {
  level?: string;
  /** Where to write (tests capture logs through this); stdout by default. */
  destination?: DestinationStream;
}

/** The active span's ids, for every log line written inside a trace. */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const sc = span.spanContext();
  return isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : {};
}

export function createLogger(service: string, opts: LogOptions = {}): Logger {
  return pino(
    {
      name: service,
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: traceFields,
    },
    opts.destination,
  );
}

/** A logger that writes nothing (for scripts that print their own output). */
export const silentLogger: Logger = pino({ level: 'silent' });
