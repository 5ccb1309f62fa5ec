/**
 * The consent API of the accounts subgraph (docs/consent.md): User.consents, grantConsent,
 * revokeConsent, Query.consentDisclosure, and the consent-bound Account fields it owns
 * (`mask`, `displayName`: ACCOUNT_DETAILS). Only the signed-in user, for their own consents; the
 * fence already let only a `payments` caller through (every field here is @paymentOnly).
 */
import { randomBytes } from 'node:crypto';
import DataLoader from 'dataloader';
import type { GraphQLResolveInfo } from 'graphql';
import { consentAuditUnavailable, consentRequired, notFound, unauthenticated } from '../../../lib/errors.js';
import type { SubgraphContext } from '../../definition.js';
import { appendOwnRecords, type AccountRow, type NewDataAccess } from '../data.js';
import type { AccountsLoaders } from '../loaders.js';
import { consentById, consentByKey, consentsOfUsers, insertConsent, insertConsentEvent, type ConsentRow } from './data.js';
import { DISCLOSURE_VERSION, disclosureText } from './disclosure.js';
import { ConsentAuditUnavailable, decideConsent, documentHash, observeExpiries, type ConsentAsker, type ConsentCheck, type ConsentDecision } from './gate.js';
import { consentError, expiryOf, grantInputErrors, grantRequestHash, MAX_CONSENT_DAYS, statusAt, type ConsentUserError, type GrantInput } from './rules.js';

type Ctx = SubgraphContext<AccountsLoaders>;

function asker(ctx: Ctx, info: GraphQLResolveInfo | undefined): ConsentAsker {
  return {
    userId: ctx.caller.userId!,
    issuer: ctx.caller.issuer ?? null,
    clientId: ctx.caller.clientId ?? null,
    client: ctx.caller.client,
    requestId: ctx.requestId,
    operationHash: documentHash(info?.operation.loc?.source.body),
  };
}

/** One batch of consent decisions per request (never across requests: a revocation is seen by the next one). */
interface RequestChecks {
  loader: DataLoader<ConsentCheck, ConsentDecision, string>;
  /** The account rows the request resolved (the resolvers' own reads): their institution is known. */
  accounts: Map<string, AccountRow>;
}
const checkLoaders = new WeakMap<object, RequestChecks>();
function checks(ctx: Ctx, info: GraphQLResolveInfo): RequestChecks {
  let found = checkLoaders.get(ctx.loaders);
  if (!found) {
    const who = asker(ctx, info);
    const accounts = new Map<string, AccountRow>();
    const loader = new DataLoader((keys: readonly ConsentCheck[]) => decideConsent(ctx.db, who, keys, new Date(), accounts), {
      cacheKeyFn: (k) => `${k.accountId}|${k.coordinate}`,
    });
    found = { loader, accounts };
    checkLoaders.set(ctx.loaders, found);
  }
  return found;
}

/** A consent-bound field of the caller's own account: its value, or null with CONSENT_REQUIRED. */
async function consented<T>(ctx: Ctx, info: GraphQLResolveInfo, account: AccountRow, coordinate: string, value: () => T): Promise<T> {
  const request = checks(ctx, info);
  request.accounts.set(account.id, account);
  const d = await request.loader.load({ accountId: account.id, coordinate }).catch((err: unknown) => {
    throw err instanceof ConsentAuditUnavailable ? consentAuditUnavailable() : err;
  });
  if (!d.allowed) throw consentRequired(account.institutionId, d.scope, coordinate);
  return value();
}

function signedIn(ctx: Ctx, field: string): string {
  if (!ctx.caller.userId) throw unauthenticated(`Sign in to use ${field}.`);
  return ctx.caller.userId;
}

const consentId = () => `cns_${randomBytes(12).toString('base64url')}`;
const failed = (userErrors: ConsentUserError[]) => ({ consent: null, userErrors });

async function grantConsent(input: GrantInput, ctx: Ctx, info: GraphQLResolveInfo) {
  const userId = signedIn(ctx, 'Mutation.grantConsent');
  const errors = grantInputErrors(input, DISCLOSURE_VERSION);
  if (errors.length) return failed(errors);
  const hash = grantRequestHash(input);
  const same = (c: ConsentRow) => (c.requestHash === hash ? { consent: c, userErrors: [] } : failed([reused()]));
  const existing = await consentByKey(ctx.db, userId, input.idempotencyKey);
  if (existing) return same(existing);
  const institution = await ctx.loaders.institution.load(input.institutionId);
  if (!institution) return failed([consentError('INSTITUTION_NOT_FOUND', ['input', 'institutionId'], `No institution "${input.institutionId}".`)]);
  const accounts = await ctx.loaders.accountsOfUser.load(userId);
  if (!accounts.some((a) => a.institutionId === institution.id)) {
    return failed([consentError('NO_LINKED_ACCOUNT', ['input', 'institutionId'], `You have no account linked at ${institution.name}.`)]);
  }
  const now = new Date();
  const id = consentId();
  const who = asker(ctx, info);
  const inserted = await ctx.db.transaction(async (trx) => {
    const ok = await insertConsent(trx, {
      id,
      userId,
      institutionId: institution.id,
      scopes: [...input.scopes].sort() as ConsentRow['scopes'],
      purpose: 'PAYMENTS',
      disclosureVersion: input.disclosureVersion,
      grantedAt: now.toISOString(),
      expiresAt: expiryOf(now, input.durationDays).toISOString(),
      idempotencyKey: input.idempotencyKey,
      requestHash: hash,
    });
    if (ok) await appendOwnRecords(trx, [auditOf(who, now, 'consent-grant', ['Mutation.grantConsent'], institution.id)]);
    return ok;
  });
  // A racing duplicate of the same key committed first: answer as a retry would be answered.
  const consent = await consentByKey(ctx.db, userId, input.idempotencyKey);
  if (!consent) throw new Error('consent vanished after its grant');
  return inserted ? { consent, userErrors: [] } : same(consent);
}

function reused(): ConsentUserError {
  return consentError('IDEMPOTENCY_KEY_REUSED', ['input', 'idempotencyKey'], 'This idempotency key was already used for another grant.');
}

function auditOf(who: ConsentAsker, now: Date, layer: string, coordinates: string[], institutionId: string): NewDataAccess {
  return {
    at: now.toISOString(),
    userId: who.userId,
    purpose: 'payments',
    issuer: who.issuer,
    clientId: who.clientId,
    client: who.client,
    operationName: null,
    operationHash: who.operationHash,
    coordinates,
    decision: 'ALLOWED',
    layer,
    requestId: who.requestId,
    institutions: [institutionId],
  };
}

async function revokeConsent(consentIdArg: string, ctx: Ctx, info: GraphQLResolveInfo) {
  const userId = signedIn(ctx, 'Mutation.revokeConsent');
  const found = typeof consentIdArg === 'string' ? await consentById(ctx.db, consentIdArg) : null;
  if (!found || found.userId !== userId) return failed([consentError('NOT_FOUND', ['input', 'consentId'], `No consent "${consentIdArg}" of yours.`)]);
  const now = new Date();
  const who = asker(ctx, info);
  const already = () =>
    failed([consentError('CONSENT_ALREADY_REVOKED', ['input', 'consentId'], `Consent "${found.id}" is already ${statusAt(found, now).toLowerCase()}.`)]);
  if (statusAt(found, now) !== 'ACTIVE') {
    await ctx.db.transaction((trx) => observeExpiries(trx, who, [found], now));
    return already();
  }
  const revoked = await ctx.db.transaction(async (trx) => {
    const ok = await insertConsentEvent(trx, found.id, 'REVOKED', now.toISOString());
    if (ok) await appendOwnRecords(trx, [auditOf(who, now, 'consent-revoke', ['Mutation.revokeConsent'], found.institutionId)]);
    return ok;
  });
  if (!revoked) return already();
  return { consent: await consentById(ctx.db, found.id), userErrors: [] };
}

export const consentResolvers = {
  Query: {
    consentDisclosure: async (_: unknown, args: { institutionId: string }, ctx: Ctx) => {
      const institution = await ctx.loaders.institution.load(args.institutionId);
      return institution ? { institution, version: DISCLOSURE_VERSION, text: disclosureText(institution.name), maxDurationDays: MAX_CONSENT_DAYS } : null;
    },
  },
  Mutation: {
    grantConsent: (_: unknown, args: { input: GrantInput }, ctx: Ctx, info: GraphQLResolveInfo) => grantConsent(args.input, ctx, info),
    revokeConsent: (_: unknown, args: { input: { consentId: string } }, ctx: Ctx, info: GraphQLResolveInfo) => revokeConsent(args.input.consentId, ctx, info),
  },
  User: {
    consents: async (user: { id: string; handle: string }, _: unknown, ctx: Ctx, info: GraphQLResolveInfo) => {
      if (user.id !== ctx.caller.userId) throw notFound(`The consents of user "${user.handle}" are visible only to that user.`);
      const rows = await consentsOfUsers(ctx.db, [user.id]);
      const now = new Date();
      if (rows.some((c) => !c.expiryRecorded && statusAt(c, now) === 'EXPIRED'))
        await ctx.db.transaction((trx) => observeExpiries(trx, asker(ctx, info), rows, now));
      return rows;
    },
  },
  Consent: {
    institution: (c: ConsentRow, _: unknown, ctx: Ctx) => ctx.loaders.institution.load(c.institutionId),
    status: (c: ConsentRow) => statusAt(c, new Date()),
  },
  /** The Account fields of this subgraph that need ACCOUNT_DETAILS (merged into resolvers.ts's Account). */
  Account: {
    mask: (a: AccountRow, _: unknown, ctx: Ctx, info: GraphQLResolveInfo) => consented(ctx, info, a, 'Account.mask', () => a.mask),
    displayName: (a: AccountRow, _: unknown, ctx: Ctx, info: GraphQLResolveInfo) => consented(ctx, info, a, 'Account.displayName', () => a.displayName),
  },
};
