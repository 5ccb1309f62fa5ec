/**
 * Assertions that several suites make, in one place:
 * - expectData / expectGraphQLError: a GraphQL result with data and no errors, or refused with a code;
 * - expectForbiddenDataUse: refused by the data-use fence, naming the protected coordinates;
 * - expectUnseen: refused to a non-payments caller as if the payment-only API did not exist;
 * - expectUserErrors: a mutation payload refused with exactly these user-error codes and no result;
 * - expectNothingMoved: balances and every money-movement table unchanged across a refused action;
 * - expectNoLeak (findLeaks, scrubVolatile): no secret value in a response body, headers or logs,
 *   matched as a whole value, never inside a random request id, UUID, hash, nonce or timestamp.
 */
import type { Knex } from 'knex';
import { expect } from 'vitest';
import { policyFromSupergraph } from '../../fence/operation-check.js';
import { readSupergraph } from '../../schema/supergraph.js';
import { snapshot } from './ledger.js';

export interface GraphQLErrorLike {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown>;
}

/** A GraphQL result (stack.gql, postGraphQL), or the error list a graphql-ws subscription ends with. */
export type ResultLike = { status?: number; data?: unknown; errors?: readonly GraphQLErrorLike[] } | readonly GraphQLErrorLike[];

function parts(r: ResultLike): { status?: number; data?: unknown; errors?: readonly GraphQLErrorLike[] } {
  return Array.isArray(r) ? { errors: r as readonly GraphQLErrorLike[] } : (r as Exclude<ResultLike, readonly GraphQLErrorLike[]>);
}

/** The result has no errors and some data: returns the data. */
export function expectData<T>(r: { data?: T | null; errors?: readonly GraphQLErrorLike[] }): T {
  expect(r.errors, `unexpected GraphQL errors: ${JSON.stringify(r.errors)}`).toBeUndefined();
  expect(r.data, 'no data').toBeTruthy();
  return r.data!;
}

/**
 * The first error has `extensions.code` = `code`; with `status`, the HTTP status is that; with
 * `noData`, the result carries no data at all. Returns the error.
 */
export function expectGraphQLError(r: ResultLike, code: string, opts: { status?: number; noData?: boolean } = {}): GraphQLErrorLike {
  const { status, data, errors } = parts(r);
  const shown = JSON.stringify(errors);
  expect(errors?.length ?? 0, `expected a GraphQL error ${code}, got none`).toBeGreaterThan(0);
  expect(errors![0]!.extensions?.code, shown).toBe(code);
  if (opts.status !== undefined) expect(status, shown).toBe(opts.status);
  if (opts.noData) expect(data ?? null, 'a refused result must carry no data').toBeNull();
  return errors![0]!;
}

/**
 * Refused by the data-use fence: no data, and an error FORBIDDEN_DATA_USE whose message and
 * `extensions.coordinates` name every one of `coordinates` (the protected fields selected).
 */
export function expectForbiddenDataUse(r: ResultLike, coordinates: readonly string[] = []): GraphQLErrorLike {
  const { data, errors } = parts(r);
  const shown = JSON.stringify(errors);
  expect(data ?? null, 'a refused result must carry no data').toBeNull();
  const err = errors?.find((e) => e.extensions?.code === 'FORBIDDEN_DATA_USE');
  expect(err, `expected FORBIDDEN_DATA_USE, got ${shown}`).toBeDefined();
  for (const c of coordinates) {
    expect(err!.extensions?.coordinates, shown).toContain(c);
    expect(err!.message, shown).toContain(c);
  }
  return err!;
}

/** The payment-only types of the API. */
const HIDDEN_TYPES = policyFromSupergraph(readSupergraph()).protectedCoordinates().types;

/**
 * Refused to a caller whose purpose is not `payments` as if the payment-only part of the API did
 * not exist: no data, every error GRAPHQL_VALIDATION_FAILED (HTTP 400 when the result has a
 * status), no fence coordinates, and no message naming a payment-only type (`"Account"`,
 * `[Card!]!`, ...) or suggesting a field. What the caller typed itself may be named, as unknown
 * (`Cannot query field "accounts" on type "User".`, `Unknown type "Account".`). Returns the errors.
 */
export function expectUnseen(r: ResultLike): readonly GraphQLErrorLike[] {
  const { status, data, errors } = parts(r);
  const shown = JSON.stringify(errors);
  expect(data ?? null, 'a refused result must carry no data').toBeNull();
  expect(errors?.length ?? 0, `expected a validation error, got none`).toBeGreaterThan(0);
  if (status !== undefined) expect(status, shown).toBe(400);
  for (const e of errors!) {
    expect(e.extensions?.code, shown).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(e.extensions?.coordinates, shown).toBeUndefined();
    expect(e.message, shown).not.toMatch(/did you mean/i);
    // A type the caller typed itself may be named as unknown, and only so.
    const rest = e.message.replace(/^Unknown type "\w+"\.$/, '');
    for (const t of HIDDEN_TYPES) expect(rest, `${shown} names the payment-only type ${t}`).not.toMatch(new RegExp(`(^|[^A-Za-z0-9_])${t}([^A-Za-z0-9_]|$)`));
  }
  return errors!;
}

export interface UserErrorLike {
  code: string;
  field: readonly string[] | null;
  message: string;
}

/**
 * A mutation payload (`{ transfer | purchase | alert, userErrors }`) with exactly the user-error
 * `codes`, in order, each with a message; when refused (codes given), every other field is null.
 * With `field`, the first user error points at that input field.
 */
export function expectUserErrors(
  payload: { userErrors: readonly UserErrorLike[] } & Record<string, unknown>,
  codes: readonly string[],
  opts: { field?: readonly string[] } = {},
): readonly UserErrorLike[] {
  const shown = JSON.stringify(payload);
  expect(
    payload.userErrors.map((e) => e.code),
    shown,
  ).toEqual(codes);
  for (const e of payload.userErrors) expect(e.message.length, shown).toBeGreaterThan(0);
  if (codes.length > 0) {
    for (const [k, v] of Object.entries(payload)) if (k !== 'userErrors') expect(v, `${k} of a refused payload: ${shown}`).toBeNull();
  }
  if (opts.field) expect(payload.userErrors[0]?.field, shown).toEqual(opts.field);
  return payload.userErrors;
}

/**
 * Runs `action` (a refusal) and checks that nothing moved: every ledger balance and the row counts
 * of every table money movement writes are the same after it as before. Returns what `action` returned.
 */
export async function expectNothingMoved<T>(db: Knex, action: () => Promise<T>): Promise<T> {
  const before = await snapshot(db);
  const out = await action();
  expect(await snapshot(db), 'balances or money-movement rows changed').toEqual(before);
  return out;
}

// --- leaks -----------------------------------------------------------------------------------------

/**
 * Runs of text that are random or made from the clock, whatever the response or log line: UUIDs
 * (request ids, nonces, generated ids), ISO-8601 timestamps, long hex runs (hashes, signatures), the
 * request id an error message quotes, and fields whose value is random or a clock reading.
 */
const VOLATILE: readonly RegExp[] = [
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi,
  /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?/g,
  /(?<![\w-])[0-9a-f]{16,}(?![\w-])/gi,
  /request id [^\s)"]+/gi,
  /"(?:requestId|request_id|nonce|time|at|createdAt|asOf|durationMs|responseTime|pid|hostname|port)"\s*:\s*(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)/gi,
];

/** Response headers whose value is random, a clock reading or a size. */
const VOLATILE_HEADERS = new Set(['date', 'content-length', 'x-request-id', 'etag', 'keep-alive', 'age', 'expires', 'last-modified', 'retry-after']);

/**
 * `text` with every volatile run replaced by a placeholder, except runs that are (part of) one of
 * `keep` (so that scrubbing never hides a leaked secret that happens to look random).
 */
export function scrubVolatile(text: string, keep: readonly string[] = []): string {
  let out = text;
  for (const re of VOLATILE) out = out.replace(re, (m) => (keep.some((k) => k.includes(m) || m.includes(`"${k}"`)) ? m : '<volatile>'));
  return out;
}

function textOf(where: unknown): string {
  if (typeof where === 'string') return where;
  if (where instanceof Headers)
    return [...where]
      .filter(([k]) => !VOLATILE_HEADERS.has(k.toLowerCase()))
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n');
  if (where && typeof where === 'object' && typeof (where as { text?: unknown }).text === 'string') {
    const r = where as { text: string; headers?: unknown };
    return r.headers instanceof Headers ? `${textOf(r.headers)}\n\n${r.text}` : r.text;
  }
  return JSON.stringify(where, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? '';
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regular expression matching `secret` as a whole token: not inside a longer word, number or id. */
function wholeToken(secret: string): RegExp {
  const before = /^[\w-]/.test(secret) ? '(?<![\\w-])' : '';
  const after = /[\w-]$/.test(secret) ? '(?![\\w-])' : '';
  return new RegExp(`${before}${escapeRe(secret)}${after}`);
}

/**
 * The secrets found in `where` (a string, a response with `text` and `headers`, Headers, or any
 * JSON value), each as a whole token, raw or JSON-escaped, after scrubbing volatile runs.
 */
export function findLeaks(where: unknown, secrets: Iterable<string>): { secret: string; context: string }[] {
  const list = [...new Set(secrets)].filter((s) => s.length > 0);
  const text = scrubVolatile(textOf(where), list);
  const found: { secret: string; context: string }[] = [];
  for (const s of list) {
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) {
      const m = wholeToken(form).exec(text);
      if (m) {
        found.push({ secret: s, context: text.slice(Math.max(0, m.index - 80), m.index + form.length + 80) });
        break;
      }
    }
  }
  return found;
}

/** None of `secrets` is in `where` (see findLeaks); `label` says what was scanned. */
export function expectNoLeak(where: unknown, secrets: Iterable<string>, label = 'the response'): void {
  const leaks = findLeaks(where, secrets);
  expect(leaks.map((l) => `${JSON.stringify(l.secret)} in ${label}: …${l.context}…`)).toEqual([]);
}
