/** Opaque Relay cursors over a `(timestamp, id)` order. */
import { badUserInput } from './errors.js';

export interface CursorPosition {
  at: string;
  id: number;
}

export function encodeCursor(pos: CursorPosition): string {
  return Buffer.from(JSON.stringify([pos.at, pos.id])).toString('base64url');
}

export function decodeCursor(cursor: string, arg = 'after'): CursorPosition {
  try {
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new Error('shape');
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Number.isSafeInteger(v[1])) {
      return { at: v[0], id: v[1] as number };
    }
  } catch {
    /* fall through */
  }
  throw badUserInput(`"${arg}" is not a valid cursor; pass an endCursor or edge cursor from a previous page.`, arg);
}

/** Validates `first` for connections: 1..max, default when omitted. */
export function pageSize(first: number | null | undefined, defaultSize = 20, max = 100): number {
  if (first === null || first === undefined) return defaultSize;
  if (!Number.isInteger(first) || first < 1 || first > max) throw badUserInput(`"first" must be between 1 and ${max}.`, 'first');
  return first;
}

/**
 * A forward page's Relay PageInfo. hasPreviousPage is true after a cursor: the item it names, at
 * least, comes before the page (the spec lets a forward page answer it when that is cheap).
 */
export function pageInfo(
  edges: readonly { cursor: string }[],
  hasNextPage: boolean,
  after: string | null | undefined,
): { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null } {
  return {
    hasNextPage,
    hasPreviousPage: after !== null && after !== undefined,
    startCursor: edges.length ? edges[0]!.cursor : null,
    endCursor: edges.length ? edges[edges.length - 1]!.cursor : null,
  };
}
