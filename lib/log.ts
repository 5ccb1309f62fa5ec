/**
 * Structured JSON logs (pino) for every service. Request ids travel from the gateway to the
 * subgraphs in `x-request-id`. We never log variables, results, headers or tokens; the redaction
 * list is a second line of defence for anything that slips into a log object by name.
 */
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

export function createLogger(service: string, opts: LogOptions = {}): Logger {
  return pino(
    {
      name: service,
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

/** A logger that writes nothing (for scripts that print their own output). */
export const silentLogger: Logger = pino({ level: 'silent' });
