/**
 * History's cache policy: Apollo's relayStylePagination (pages appended by `after` cursor, one
 * list per account), plus a head refresh: re-reading the first page (a poll, a refetch after a
 * send) prepends the new edges to the list already scrolled instead of replacing it, when the
 * fresh page overlaps what is cached (cursors are stable). With no overlap (more new rows than a
 * page) the first page replaces the list, as relayStylePagination does.
 */
import type { FieldPolicy, Reference } from '@apollo/client';
import { relayStylePagination } from '@apollo/client/utilities';

interface Edge {
  cursor?: string;
  node?: unknown;
}
interface Connection {
  edges?: Edge[];
  pageInfo?: Record<string, unknown>;
}

export function historyPagination(keyArgs: false | string[] = false): FieldPolicy {
  const base = relayStylePagination(keyArgs) as FieldPolicy<Connection, Connection, Connection>;
  const merge = base.merge as Exclude<NonNullable<typeof base.merge>, boolean>;
  return {
    ...base,
    merge(existing, incoming, options) {
      const args = options.args ?? {};
      const cached = existing?.edges ?? [];
      const fresh = incoming?.edges ?? [];
      if (!args.after && !args.before && cached.length > 0 && fresh.length > 0) {
        const cursorOf = (e: Edge) => e.cursor ?? (options.readField('cursor', e as unknown as Reference) as string | undefined);
        const last = cursorOf(fresh[fresh.length - 1]!);
        if (last && cached.some((e: Edge) => e.cursor === last)) {
          // Splice: the fresh page before the cached edge it ends on (relayStylePagination's `before`
          // branch keeps the cached edges from that one on, and their hasNextPage and endCursor).
          const { endCursor: _end, hasNextPage: _next, ...pageInfo } = incoming!.pageInfo ?? {};
          return merge(existing, { ...incoming, edges: fresh.slice(0, -1), pageInfo }, { ...options, args: { ...args, before: last } });
        }
      }
      return merge(existing, incoming, options);
    },
  } as FieldPolicy;
}
