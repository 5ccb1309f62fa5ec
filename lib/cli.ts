/**
 * What an npm-run entry point (scripts/, bench/run.ts) prints for the person at the terminal.
 * That is the script's output, not logging: services log JSON through pino (lib/log.ts), and a
 * script that runs a service logs its life through pino too. This is the one module that writes
 * to stdout/stderr directly, so that a direct write anywhere else stands out as a mistake.
 */

/** A line of the script's output (stdout): what it is run for (URLs, tokens, results). */
export function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** A line for the person rather than the output (stderr): usage, progress, problems. */
export function warn(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Ends the script: `message` on stderr, then exit with `exitCode` (by convention 2: usage or setup, 1: failure). */
export function fail(message: string, exitCode = 1): never {
  warn(message);
  process.exit(exitCode);
}

/** A thrown value as text: its message, or with `stack` its stack trace (for unexpected failures). */
export function messageOf(err: unknown, opts: { stack?: boolean } = {}): string {
  if (!(err instanceof Error)) return String(err);
  return opts.stack && err.stack ? err.stack : err.message;
}
