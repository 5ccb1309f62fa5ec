/**
 * Bank oversight (docs/consent.md): `Query.oversight` for a caller holding an institution's
 * `oversight` credential, for that institution only. The fence lets such a caller select nothing
 * but this view (fence/policy.ts mayReceive); here it sees its customers' consents under a
 * pseudonym, the data-access records that concern its customers' accounts, and their counts.
 *
 * The pseudonym of a customer is HMAC-SHA256(install key, institution id, user id): stable for
 * one bank, unlinkable across banks without the key, which never leaves the accounts database
 * (table pseudonym_keys, random per install, migration 003).
 */
import { createHmac } from 'node:crypto';
import type { Knex } from 'knex';
import { decodeCursor, encodeCursor, pageInfo, pageSize } from '../../../lib/cursor.js';
import { unauthenticated } from '../../../lib/errors.js';
import type { SubgraphContext } from '../../definition.js';
import { DATA_ACCESS_COLUMNS, dataAccessOf, type DataAccessRow, type RawDataAccess } from '../data.js';
import type { AccountsLoaders } from '../loaders.js';
import { consentsOfInstitution, pseudonymKey, type ConsentRow } from './data.js';
import { statusAt } from './rules.js';

type Ctx = SubgraphContext<AccountsLoaders>;
interface OversightRoot {
  institutionId: string;
}

const keys = new WeakMap<Knex, Promise<string>>();
async function pseudonymOf(db: Knex, institutionId: string, userId: string): Promise<string> {
  let key = keys.get(db);
  if (!key) {
    key = pseudonymKey(db);
    keys.set(db, key);
    key.catch(() => keys.delete(db));
  }
  const mac = createHmac('sha256', Buffer.from(await key, 'hex'))
    .update(`${institutionId}\u0000${userId}`)
    .digest('base64url');
  return `cus_${mac.slice(0, 22)}`;
}

/** The records that concern `institutionId`: naming it, or naming none and by one of its customers. */
function recordsOf(db: Knex, institutionId: string) {
  const like = `%"${institutionId.replace(/[\\%_]/g, (c) => `\\${c}`)}"%`;
  return db('data_access_log').where((w) => {
    void w
      .whereRaw(`institutions LIKE ? ESCAPE '\\'`, [like])
      .orWhere((n) => void n.whereNull('institutions').whereIn('user_id', db('accounts').select('user_id').where('institution_id', institutionId)));
  });
}

/** One Relay page of `rows` (fetched `size + 1` to know whether more follow), after the cursor `after`. */
function page<R>(rows: R[], size: number, after: string | null | undefined, cursorOf: (r: R) => string) {
  const edges = rows.slice(0, size).map((r) => ({ cursor: cursorOf(r), node: r }));
  return { edges, pageInfo: pageInfo(edges, rows.length > size, after) };
}

export const oversightResolvers = {
  Query: {
    oversight: async (_: unknown, __: unknown, ctx: Ctx): Promise<OversightRoot | null> => {
      if (ctx.caller.purpose !== 'oversight') return null;
      const id = ctx.caller.institutionId;
      const institution = id ? await ctx.loaders.institution.load(id) : null;
      if (!institution) throw unauthenticated('This oversight credential names no institution paygraph knows.');
      return { institutionId: institution.id };
    },
  },
  Oversight: {
    institution: (o: OversightRoot, _: unknown, ctx: Ctx) => ctx.loaders.institution.load(o.institutionId),
    consents: async (o: OversightRoot, args: { first?: number | null; after?: string | null }, ctx: Ctx) => {
      const size = pageSize(args.first);
      const before = args.after ? decodeCursor(args.after).id : null;
      const rows = await consentsOfInstitution(ctx.db, o.institutionId, size + 1, before);
      return page(
        rows.map((c) => ({ ...c, institutionId: o.institutionId })),
        size,
        args.after,
        (c) => encodeCursor({ at: c.grantedAt, id: c.seq }),
      );
    },
    accessRecords: async (o: OversightRoot, args: { first?: number | null; after?: string | null }, ctx: Ctx) => {
      const size = pageSize(args.first);
      const before = args.after ? decodeCursor(args.after).id : null;
      const q = recordsOf(ctx.db, o.institutionId)
        .select(DATA_ACCESS_COLUMNS)
        .orderBy('id', 'desc')
        .limit(size + 1);
      if (before !== null) void q.andWhere('id', '<', before);
      const rows = ((await q) as RawDataAccess[]).map((r) => ({ ...dataAccessOf(r), institutionId: o.institutionId }));
      return page(rows, size, args.after, (r) => encodeCursor({ at: r.at, id: r.id }));
    },
    summary: async (o: OversightRoot, _: unknown, ctx: Ctx) => {
      const rows = (await recordsOf(ctx.db, o.institutionId)
        .select('purpose', 'decision')
        .count({ n: '*' })
        .groupBy('purpose', 'decision')
        .orderBy(['purpose', 'decision'])) as { purpose: string | null; decision: string; n: number | string }[];
      return rows.map((r) => ({ purpose: r.purpose, decision: r.decision, count: Number(r.n) }));
    },
  },
  OversightConsent: {
    customer: (c: ConsentRow, _: unknown, ctx: Ctx) => pseudonymOf(ctx.db, c.institutionId, c.userId),
    status: (c: ConsentRow) => statusAt(c, new Date()),
  },
  OversightAccessRecord: {
    id: (r: DataAccessRow) => String(r.id),
    customer: async (r: DataAccessRow & { institutionId: string }, _: unknown, ctx: Ctx) => {
      if (!r.userId) return null;
      const accounts = await ctx.loaders.accountsOfUser.load(r.userId);
      return accounts.some((a) => a.institutionId === r.institutionId) ? pseudonymOf(ctx.db, r.institutionId, r.userId) : null;
    },
    // Only this institution: a record naming several banks tells each one of itself alone.
    institutions: (r: DataAccessRow & { institutionId: string }) => (r.institutions ?? []).filter((i) => i === r.institutionId),
    // The record's leaf in the transparency log and its subject salt: with them the bank recomputes
    // the leaf's subject commitment and checks the leaf's inclusion (docs/audit.md).
    leafIndex: (r: DataAccessRow) => r.leafIndex,
    salt: (r: DataAccessRow) => r.salt,
  },
};
