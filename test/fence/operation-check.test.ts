/**
 * Fence layer 2 as a pure function (`checkOperation`), on a small schema with the shapes paygraph's
 * graph does not have yet (interfaces, unions, subscriptions), plus the audit's fail-closed rule
 * and the introspection filter on those shapes.
 */
import { buildSchema, parse, printSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { checkOperation, FencePolicy } from '../../fence/operation-check.js';
import { Fence } from '../../fence/fence.js';
import { buildContractSchema } from '../../fence/contract-schema.js';
import { readMarks } from '../../fence/marks.js';
import { batchingAuditSink, type AuditSink } from '../../fence/audit-sink.js';
import type { DataAccessRecord } from '../../fence/audit-record.js';
import { silentLogger } from '../../lib/log.js';

const SDL = `
  directive @paymentOnly(source: String) on FIELD_DEFINITION | OBJECT | INTERFACE
  type Query { node(id: ID!): Node  search(q: String!): [SearchResult!]!  feed: [FeedItem!]!  merchant: Merchant  me: User }
  type Mutation { pay(amount: Int!): Payment! rename(name: String!): User }
  type Subscription { paid: Payment!  offers: Offer! }
  interface Node { id: ID! }
  interface Ledgered @paymentOnly { amount: Int! }
  type User implements Node { id: ID! name: String! card: String @paymentOnly }
  type Merchant implements Node { id: ID! name: String! }
  type Payment implements Node & Ledgered { id: ID! amount: Int! memo: String }
  type Offer { id: ID! headline: String! }
  union SearchResult = Merchant | Payment
  union FeedItem = Payment
`;
const doc = parse(SDL);
const policy = new FencePolicy(buildSchema(SDL), readMarks(doc));
const ad = { purpose: 'advertising' as const };
const check = (q: string, caller: { purpose: 'payments' | 'advertising' | null } = ad) => checkOperation(policy, parse(q), caller);

describe('checkOperation', () => {
  it('protection rules: marked interface protects implementations; all-protected union is protected; fields returning them too', () => {
    expect(policy.isProtectedType('Payment')).toBe(true);
    expect(policy.isProtectedType('FeedItem')).toBe(true);
    expect(policy.isProtectedType('SearchResult')).toBe(false);
    expect(policy.isProtectedField('Query', 'feed')).toBe(true);
    expect(policy.isProtectedField('Query', 'search')).toBe(false);
    expect(policy.isProtectedField('User', 'card')).toBe(true);
    expect(policy.isProtectedField('User', 'name')).toBe(false);
  });

  it('interfaces: a field selected through an interface is checked on every possible type', () => {
    expect(check('{ node(id: "1") { id } }').coordinates).toEqual(['Payment.id']);
    expect(check('{ node(id: "1") { ... on Merchant { id name } } }').coordinates).toEqual([]);
    expect(check('{ node(id: "1") { ... on User { card } } }').coordinates).toEqual(['User.card']);
    expect(check('{ node(id: "1") { ... on Ledgered { amount } } }').coordinates).toEqual(['Ledgered.amount', 'Payment.amount']);
  });

  it('unions: inline fragments on a protected member are caught; __typename on a mixed union is not', () => {
    expect(check('{ search(q: "x") { __typename ... on Merchant { name } } }')).toEqual({ coordinates: [], adPaths: [], allowed: true });
    expect(check('{ search(q: "x") { ... on Payment { memo } } }').coordinates).toEqual(['Payment.memo']);
    expect(check('{ search(q: "x") { ...P } } fragment P on Payment { __typename }').coordinates).toEqual(['Payment.__typename']);
    expect(check('{ feed { __typename } }').coordinates).toEqual(['Payment.__typename', 'Query.feed']);
  });

  it('aliases, fragments, cycles-safe spreads, directives with variables', () => {
    expect(check('{ a: me { b: card } }').coordinates).toEqual(['User.card']);
    expect(check('query($x: Boolean!) { me { card @include(if: $x) } }').coordinates).toEqual(['User.card']);
    expect(check('{ me { ...A ...A } } fragment A on User { ...B } fragment B on User { card }').coordinates).toEqual(['User.card']);
  });

  it('mutations and subscriptions', () => {
    expect(check('mutation { pay(amount: 1) { id } }').coordinates).toEqual(['Mutation.pay', 'Payment.id']);
    expect(check('mutation { rename(name: "x") { name } }').coordinates).toEqual([]);
    expect(check('subscription { paid { memo } }').coordinates).toEqual(['Payment.memo', 'Subscription.paid']);
    expect(check('subscription { offers { headline } }').coordinates).toEqual([]);
  });

  it('every operation in a document counts, whichever is executed', () => {
    const d = parse('query A { merchant { name } } query B { me { card } }');
    expect(checkOperation(policy, d, ad)).toEqual({ coordinates: ['User.card'], adPaths: [], allowed: false });
  });

  it('only the payments purpose is allowed', () => {
    expect(check('{ me { card } }', { purpose: 'payments' }).allowed).toBe(true);
    expect(check('{ me { card } }', { purpose: 'advertising' }).allowed).toBe(false);
    expect(check('{ me { card } }', { purpose: null }).allowed).toBe(false);
    expect(check('{ me { name } }', { purpose: null }).allowed).toBe(true);
  });
});

describe('Fence.enforce: the audit fails closed', () => {
  const caller = { userId: 'usr_x', purpose: 'payments' as const, client: null };
  const input = (source: string) => ({ document: parse(source), source, operationName: null, caller, requestId: 'r1', layer: 'gateway' as const });

  it('records then allows a payments caller', async () => {
    const records: DataAccessRecord[] = [];
    const fence = new Fence(policy, async (r) => void records.push(r), silentLogger);
    await expect(fence.enforce(input('{ me { card } }'))).resolves.toMatchObject({ allowed: true });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ userId: 'usr_x', purpose: 'payments', decision: 'ALLOWED', coordinates: ['User.card'] });
  });

  it('refuses when the audit cannot be written, even for a payments caller', async () => {
    const failing: AuditSink = async () => {
      throw new Error('accounts down');
    };
    const fence = new Fence(policy, failing, silentLogger);
    await expect(fence.enforce(input('{ me { card } }'))).rejects.toMatchObject({ extensions: { code: 'AUDIT_UNAVAILABLE' } });
    await expect(fence.enforce({ ...input('{ me { card } }'), caller: { ...caller, purpose: 'advertising' } })).rejects.toMatchObject({
      extensions: { code: 'FORBIDDEN_DATA_USE' },
    });
    // Operations touching nothing protected need no audit.
    await expect(fence.enforce(input('{ merchant { name } }'))).resolves.toEqual({ coordinates: [], adPaths: [], allowed: true });
  });
});

describe('the audit group commit (batchingAuditSink)', () => {
  const record = (n: number): DataAccessRecord => ({
    at: new Date().toISOString(),
    userId: `usr_${n}`,
    purpose: 'payments',
    client: null,
    operationName: `Op${n}`,
    operationHash: 'a'.repeat(64),
    coordinates: ['User.card'],
    decision: 'ALLOWED',
    layer: 'gateway',
    requestId: null,
  });

  it('settles each record only when the append carrying it has committed, in order, several per append under load', async () => {
    const appends: string[][] = [];
    const commits: (() => void)[] = [];
    const sink = batchingAuditSink((records) => {
      appends.push(records.map((r) => r.operationName!));
      return new Promise<void>((commit) => commits.push(commit));
    });
    const turns = async (done: () => boolean) => {
      for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setImmediate(r));
    };
    const settled: string[] = [];
    const first = sink(record(1)).then(() => settled.push('Op1'));
    await turns(() => appends.length === 1); // the first append is in flight
    const rest = [2, 3, 4].map((n) => sink(record(n)).then(() => settled.push(`Op${n}`)));
    await turns(() => false);
    expect(settled).toEqual([]); // nothing is acknowledged before its append commits
    expect(appends).toEqual([['Op1']]); // one append at a time
    commits[0]!();
    await first;
    await turns(() => appends.length === 2);
    expect(settled).toEqual(['Op1']);
    expect(appends).toEqual([['Op1'], ['Op2', 'Op3', 'Op4']]); // the records that waited go together
    commits[1]!();
    await Promise.all(rest);
    expect(settled).toEqual(['Op1', 'Op2', 'Op3', 'Op4']);
  });

  it('a failed append rejects every record it carried, and only those', async () => {
    let calls = 0;
    const sink = batchingAuditSink(async () => {
      calls += 1;
      if (calls === 1) throw new Error('accounts down');
    }, 2);
    const results = await Promise.allSettled([1, 2, 3].map((n) => sink(record(n))));
    // Records 1 and 2 went in the first append (max 2 per append) and failed; 3 went in the next.
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(calls).toBe(2);
  });

  it('a fence over a failing batched sink still fails closed', async () => {
    const fence = new Fence(
      policy,
      batchingAuditSink(async () => Promise.reject(new Error('accounts down'))),
      silentLogger,
    );
    await expect(
      fence.enforce({
        document: parse('{ me { card } }'),
        source: '{ me { card } }',
        operationName: null,
        caller: { userId: 'usr_x', purpose: 'payments', client: null },
        requestId: null,
        layer: 'gateway',
      }),
    ).rejects.toMatchObject({
      extensions: { code: 'AUDIT_UNAVAILABLE' },
    });
  });
});

describe('the operation check cache', () => {
  it('checks a document once: the same document object gives the same verdict for every caller, without sharing arrays', () => {
    const document = parse('{ me { name card } }');
    const a = checkOperation(policy, document, { purpose: 'payments' });
    const b = checkOperation(policy, document, ad);
    expect(a).toEqual({ coordinates: ['User.card'], adPaths: [], allowed: true });
    expect(b).toEqual({ coordinates: ['User.card'], adPaths: [], allowed: false });
    a.coordinates.push('tampered');
    expect(checkOperation(policy, document, ad).coordinates).toEqual(['User.card']);
  });
});

describe('the introspection filter', () => {
  it('removes protected types, fields, union members and interfaces, and empty roots', () => {
    const printed = printSchema(buildContractSchema(policy));
    expect(printed).not.toMatch(/\bPayment\b|\bLedgered\b|\bFeedItem\b|\bcard\b|\bfeed\b|\bpay\(|\bpaid\b/);
    expect(printed).toContain('union SearchResult = Merchant');
    expect(printed).toContain('rename(name: String!): User');
    expect(printed).toContain('offers: Offer!');
  });
});

describe('the oversight purpose (a bank credential)', () => {
  const OSDL = `
    directive @paymentOnly(source: String) on FIELD_DEFINITION | OBJECT | INTERFACE
    type Query { account: Account @paymentOnly(source: "bank")  oversight: Oversight @paymentOnly(source: "oversight")  merchants: [String!]! }
    type Account @paymentOnly(source: "bank") { id: ID! mask: String }
    type Oversight @paymentOnly(source: "oversight") { institution: String! records: [Rec!]! }
    type Rec @paymentOnly(source: "oversight") { id: ID! }
  `;
  const o = new FencePolicy(buildSchema(OSDL), readMarks(parse(OSDL)));
  const as = (q: string, purpose: 'payments' | 'advertising' | 'oversight' | null) => checkOperation(o, parse(q), { purpose }).allowed;

  it('may select its own view and public data, nothing else payment-only', () => {
    expect(as('{ oversight { institution records { id __typename } } merchants }', 'oversight')).toBe(true);
    expect(as('{ account { mask } }', 'oversight')).toBe(false);
    expect(as('{ oversight { institution } account { id } }', 'oversight')).toBe(false);
  });

  it('its view stays payment-only for everyone else: payments may select it, advertising and anonymous may not', () => {
    expect(as('{ oversight { institution } }', 'payments')).toBe(true);
    expect(as('{ oversight { institution } }', 'advertising')).toBe(false);
    expect(as('{ oversight { institution } }', null)).toBe(false);
    expect(as('{ account { mask } }', 'payments')).toBe(true);
  });

  it('its contract schema keeps its view and drops all other payment-only data; the advertising contract drops both', () => {
    const fence = new Fence(o, (async () => 1) as unknown as AuditSink, silentLogger);
    const mine = printSchema(fence.contractSchemaFor('oversight'));
    expect(mine).toMatch(/type Oversight/);
    expect(mine).not.toMatch(/type Account|mask/);
    const ads = printSchema(fence.contractSchemaFor('advertising'));
    expect(ads).not.toMatch(/Oversight|Account/);
  });
});
