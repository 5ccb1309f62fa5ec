/**
 * Gateway request limits: graphql-armor (depth, aliases, tokens, directives, cost, field
 * suggestions); the per-user mutation rate limit is in rate-limit.ts. Each refusal has its own error code.
 */
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, Lexer, Source, TokenKind, type ValidationContext, type ValidationRule } from 'graphql';
import { HttpError } from '../lib/errors.js';
import type { GatewayContext } from './context.js';

export interface LimitsConfig {
  maxDepth: number;
  maxAliases: number;
  maxTokens: number;
  maxDirectives: number;
  maxCost: number;
  /** Mutations per user per window, and the window. */
  mutationsPerWindow: number;
  mutationWindowMs: number;
  /** Points one client address may spend on the public audit endpoints per minute (audit-routes.ts). */
  auditReadsPerMinute: number;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  maxDepth: 12,
  maxAliases: 15,
  maxTokens: 2000,
  maxDirectives: 20,
  maxCost: 5000,
  mutationsPerWindow: 120,
  mutationWindowMs: 60_000,
  auditReadsPerMinute: 3_000,
};

/** Codes clients see for each armor limit (in `extensions.code`). */
export const LIMIT_CODES = {
  maxDepth: 'QUERY_TOO_DEEP',
  maxAliases: 'TOO_MANY_ALIASES',
  maxTokens: 'QUERY_TOO_LARGE',
  maxDirectives: 'TOO_MANY_DIRECTIVES',
  costLimit: 'QUERY_TOO_COSTLY',
} as const;

/** Armor reports validation errors; we re-report them carrying our code in `extensions.limit`. */
function reject(code: string) {
  return (ctx: ValidationContext | null, error: GraphQLError) => {
    if (ctx) ctx.reportError(new GraphQLError(error.message, { extensions: { limit: code } }));
    else throw new GraphQLError(error.message, { extensions: { code, http: { status: 400 } } });
  };
}

export function armor(limits: LimitsConfig, production: boolean): { plugins: ApolloServerPlugin<GatewayContext>[]; validationRules: ValidationRule[] } {
  const config: NonNullable<ConstructorParameters<typeof ApolloArmor>[0]> = {
    maxDepth: { n: limits.maxDepth, onReject: [reject(LIMIT_CODES.maxDepth)], propagateOnRejection: false },
    maxAliases: { n: limits.maxAliases, onReject: [reject(LIMIT_CODES.maxAliases)], propagateOnRejection: false },
    // Token counting happens before parsing, in checkTokenLimit (armor's own plugin turns syntax errors into 500s).
    maxTokens: { enabled: false },
    maxDirectives: { n: limits.maxDirectives, onReject: [reject(LIMIT_CODES.maxDirectives)], propagateOnRejection: false },
    costLimit: { maxCost: limits.maxCost, onReject: [reject(LIMIT_CODES.costLimit)], propagateOnRejection: false },
    // "Did you mean ...?" suggestions help attackers map the schema: off in production.
    blockFieldSuggestion: { enabled: production },
  };
  const p = new ApolloArmor(config).protect();
  return { plugins: p.plugins as ApolloServerPlugin<GatewayContext>[], validationRules: p.validationRules };
}

/** Promotes a limit code carried in `extensions.limit` to `extensions.code`. */
export function promoteLimitCode(formatted: { message: string; extensions?: Record<string, unknown> }): typeof formatted {
  const limit = formatted.extensions?.limit;
  if (typeof limit !== 'string') return formatted;
  const { limit: _ignored, ...rest } = formatted.extensions ?? {};
  return { ...formatted, extensions: { ...rest, code: limit } };
}

/** Counts lexer tokens, stopping at the limit: cheaper than a parse, and before one. */
function exceedsTokens(query: string, max: number): boolean {
  const lexer = new Lexer(new Source(query));
  let n = 0;
  try {
    for (let t = lexer.advance(); t.kind !== TokenKind.EOF; t = lexer.advance()) if (++n > max) return true;
  } catch {
    return false; // a syntax error: Apollo reports it properly
  }
  return false;
}

/** Refuses documents with more than `max` tokens (HTTP 400, QUERY_TOO_LARGE), for POST bodies and GET query strings. */
export function checkTokenLimit(max: number): (parsed: unknown, search: string) => void {
  return (parsed, search) => {
    const bodies = Array.isArray(parsed) ? parsed : [parsed];
    const queries = bodies.map((b) =>
      b && typeof b === 'object' && typeof (b as { query?: unknown }).query === 'string' ? (b as { query: string }).query : null,
    );
    const fromSearch = new URLSearchParams(search).get('query');
    for (const q of [...queries, fromSearch]) {
      if (q && exceedsTokens(q, max)) throw new HttpError(400, `Query has more than ${max} tokens.`, LIMIT_CODES.maxTokens);
    }
  };
}
