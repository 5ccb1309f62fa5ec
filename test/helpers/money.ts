/**
 * Helpers of the money-movement tests (test/money/, and the scale suite): the contract mutations,
 * balances and snapshots of a payments database, deposits, sendTransfer/makePurchase/History through
 * the gateway, and fresh payments databases without the rest of the stack.
 */
import { prepareDb } from '../../runtime/database.js';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { openDb } from '../../lib/db.js';
import { formatMinor } from '../../lib/money.js';
import { EXTERNAL_ACCOUNT_ID } from '../../seeds/fixture.js';
import { createLogger } from '../../lib/log.js';
import { createLedger, type NewEntry } from '../../subgraphs/payments/ledger/index.js';
import { createPaymentsServices, type PaymentsServices } from '../../subgraphs/payments/services.js';
import { op } from './contract.js';
import { expect } from 'vitest';
import { expectData } from './matchers.js';
import { freshPostgresDatabase, postGraphQL, type TestStack } from './stack.js';

import { balanceOf, balances } from './ledger.js';
export { balanceOf, balances, snapshot, writeCounts } from './ledger.js';

/** The contract's SendMoney, Pay and History operations (test/contract/operations.graphql). */
export const SEND = op('SendMoney');
export const PAY = op('Pay');
export const HISTORY = op('History');

export interface UserErrorOut {
  code: string;
  field: string[] | null;
  message: string;
}
export interface TransferOut {
  id: string;
  status: string;
  amount: { amount: string; currency: string };
  note: string | null;
  from: { id: string };
  recipient: { id: string; handle: string };
  createdAt: string;
}
export interface PurchaseOut {
  id: string;
  status: string;
  amount: { amount: string; currency: string };
  merchant: { id: string; name: string; country: string };
  account: { id: string };
  createdAt: string;
}

export const newKey = () => `k-${randomUUID()}`;

/**
 * The collaborators one payments process builds on a database handle (its ledger with its group
 * commit, its movements, its event feed), for tests that move money without the gateway. Build
 * one per handle and reuse it: movements submitted to the same services share group commits.
 */
export function paymentsServices(db: Knex, clock?: () => Date): PaymentsServices {
  return createPaymentsServices({ db, logger: createLogger('payments', { level: 'silent' }), clock });
}

/**
 * Posts raw journal entries (deposits, rule probes) through the ledger's group commit, the API
 * movements use: each entry is checked by the ledger's rules under its lock and posted, or the
 * returned function rejects with the ledger's LedgerError and nothing is written.
 */
export function entryPoster(db: Knex): (entry: NewEntry) => Promise<void> {
  const post = createLedger({ db, logger: createLogger('payments', { level: 'silent' }) }).groupCommit<NewEntry, Error | null>(async (batch, entries) => {
    await batch.lock({ accountIds: entries.flatMap((e) => e.postings.map((p) => p.accountId)) });
    const outcomes = entries.map((e) => {
      const refused = batch.check(e);
      if (!refused) batch.post(e);
      return refused;
    });
    return { outcomes };
  });
  return async (entry) => {
    const refused = await post(entry);
    if (refused) throw refused;
  };
}

/** Test set-up: money arriving from outside (a deposit), through the ledger module. */
export async function deposit(db: Knex, accountId: string, minor: bigint): Promise<void> {
  await entryPoster(db)({
    id: `je_test_${randomUUID()}`,
    kind: 'DEPOSIT',
    description: 'Test deposit',
    postedAt: new Date().toISOString(),
    postings: [
      { accountId: EXTERNAL_ACCOUNT_ID, amountMinor: -minor, currency: 'USD' },
      { accountId, amountMinor: minor, currency: 'USD' },
    ],
  });
}

/** A gateway to call: a test stack, or a gateway's URL (one of a cluster's). */
export type GatewayTarget = Pick<TestStack, 'url'> | string;

async function mutate<T>(target: GatewayTarget, token: string, query: string, input: Record<string, unknown>): Promise<T> {
  return expectData(
    await postGraphQL<T>(typeof target === 'string' ? target : target.url, { query, variables: { input } }, { authorization: `Bearer ${token}` }),
  );
}

export async function send(
  target: GatewayTarget,
  token: string,
  input: Record<string, unknown>,
): Promise<{ transfer: TransferOut | null; userErrors: UserErrorOut[] }> {
  return (await mutate<{ sendTransfer: { transfer: TransferOut | null; userErrors: UserErrorOut[] } }>(target, token, SEND, input)).sendTransfer;
}

export async function pay(
  target: GatewayTarget,
  token: string,
  input: Record<string, unknown>,
): Promise<{ purchase: PurchaseOut | null; userErrors: UserErrorOut[] }> {
  return (await mutate<{ makePurchase: { purchase: PurchaseOut | null; userErrors: UserErrorOut[] } }>(target, token, PAY, input)).makePurchase;
}

/**
 * The overdraft check of the in-process and the cluster suites: carol's checking is brought to
 * exactly 100.00, then 30 transfers of 7.00 leave it at once (the i-th through `via(i)`): exactly
 * 14 go through (98.00 <= 100.00 < 105.00), the other 16 are refused INSUFFICIENT_FUNDS, 2.00 is
 * left and the users' total is unchanged.
 */
export async function expectConcurrentDrainNeverOverdraws(db: Knex, carolToken: string, via: (i: number) => GatewayTarget): Promise<void> {
  const start = await balanceOf(db, 'acc_carol_checking');
  const drain = await pay(via(0), carolToken, {
    accountId: 'acc_carol_checking',
    merchantId: 'mer_apple',
    amount: { amount: formatMinor(start - 10_000n, 'USD'), currency: 'USD' },
    idempotencyKey: newKey(),
  });
  expect(drain.userErrors).toEqual([]);
  expect(await balanceOf(db, 'acc_carol_checking')).toBe(10_000n);
  const before = await balances(db);
  const results = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      send(via(i), carolToken, {
        fromAccountId: 'acc_carol_checking',
        toHandle: (['alice', 'bob', 'dave'] as const)[i % 3]!,
        amount: { amount: '7.00', currency: 'USD' },
        idempotencyKey: newKey(),
      }),
    ),
  );
  expect(results.filter((r) => r.transfer).length).toBe(14);
  expect(results.filter((r) => !r.transfer).every((r) => r.userErrors.length === 1 && r.userErrors[0]!.code === 'INSUFFICIENT_FUNDS')).toBe(true);
  expect(await balanceOf(db, 'acc_carol_checking')).toBe(200n);
  expect(usersTotal(await balances(db))).toBe(usersTotal(before));
}

/** The seeded users, each with a USD checking account `acc_<handle>_checking`. */
export const HANDLES = ['alice', 'bob', 'carol', 'dave'] as const;
export type Handle = (typeof HANDLES)[number];

/** Sum of the users' own accounts (system and merchant accounts left out): conserved by transfers. */
export function usersTotal(b: Map<string, bigint>): bigint {
  return [...b].filter(([id]) => id.startsWith('acc_')).reduce((s, [, v]) => s + v, 0n);
}

export interface PlannedTransfer {
  from: Handle;
  to: Handle;
  minor: bigint;
}

/**
 * A deterministic pseudo-random plan (a linear congruential generator from `seed`): `n` transfers
 * between the seeded users' checking accounts, never to oneself, 0.01 to 60.00 each.
 */
export function transferPlan(n: number, seed: number): PlannedTransfer[] {
  let state = seed;
  const rnd = () => ((state = (state * 1103515245 + 12345) % 2147483648), state / 2147483648);
  return Array.from({ length: n }, () => {
    const from = HANDLES[Math.floor(rnd() * 4)]!;
    let to = HANDLES[Math.floor(rnd() * 4)]!;
    if (to === from) to = HANDLES[(HANDLES.indexOf(from) + 1) % 4]!;
    return { from, to, minor: BigInt(1 + Math.floor(rnd() * 6000)) };
  });
}

/** The input of a planned transfer for sendTransfer, with a fresh idempotency key. */
export function transferInput(p: PlannedTransfer): Record<string, unknown> {
  return {
    fromAccountId: `acc_${p.from}_checking`,
    toHandle: p.to,
    amount: { amount: formatMinor(p.minor, 'USD'), currency: 'USD' },
    idempotencyKey: newKey(),
  };
}

/** The balances `before` moved by the planned transfers that went through (`done(i)`): what no lost update gives. */
export function afterPlan(before: Map<string, bigint>, plan: readonly PlannedTransfer[], done: (i: number) => boolean = () => true): Map<string, bigint> {
  const expected = new Map(before);
  plan.forEach((p, i) => {
    if (!done(i)) return;
    expected.set(`acc_${p.from}_checking`, expected.get(`acc_${p.from}_checking`)! - p.minor);
    expected.set(`acc_${p.to}_checking`, expected.get(`acc_${p.to}_checking`)! + p.minor);
  });
  return expected;
}

export interface HistoryNode {
  id: string;
  kind: string;
  direction: string;
  status: string;
  amount: { amount: string; currency: string };
  description: string;
  postedAt: string;
  merchant: { id: string; name: string; category: string; country: string } | null;
  counterparty: { id: string; handle: string; name: string } | null;
}

export async function history(stack: TestStack, token: string, accountId: string, first = 5): Promise<HistoryNode[]> {
  return expectData(
    await stack.gql<{ account: { transactions: { edges: { node: HistoryNode }[] } } }>(HISTORY, { accountId, first }, token),
  ).account.transactions.edges.map((e) => e.node);
}

export interface PaymentsDb {
  /** The first handle. */
  db: Knex;
  /**
   * A handle that may change the schema (DDL: e.g. a trigger simulating a database error): on
   * PostgreSQL the test server's admin (the handles are the payments service's own role, which may
   * not), on SQLite the first handle.
   */
  admin: Knex;
  /** Independent database handles (knex instances) on the same database, as separate processes would have. */
  handles: Knex[];
  close(): Promise<void>;
}

/**
 * A fresh, migrated and seeded payments database without the rest of the stack: a SQLite file in
 * a temporary directory, or, with PAYGRAPH_TEST_DATABASE_URL, a new PostgreSQL database (dropped by
 * close()). `handles` > 1 opens more independent handles on it.
 */
export async function freshPaymentsDb(handles = 1): Promise<PaymentsDb> {
  const adminUrl = process.env.PAYGRAPH_TEST_DATABASE_URL;
  if (adminUrl) {
    const pg = await freshPostgresDatabase(adminUrl);
    const { db, url } = await prepareDb('payments', ':memory:', pg.url);
    // More handles as the payments service's role, as more payments processes would be.
    const all = [db, ...Array.from({ length: handles - 1 }, () => openDb({ postgresUrl: url!, schema: 'payments', createSchema: false }))];
    const admin = openDb({ postgresUrl: pg.url, schema: 'payments', poolMax: 2, createSchema: false });
    return {
      db,
      admin,
      handles: all,
      async close() {
        for (const h of all) await h.destroy();
        await admin.destroy();
        await pg.drop();
      },
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-money-'));
  const { db } = await prepareDb('payments', dir);
  const all = [db, ...Array.from({ length: handles - 1 }, () => openDb({ sqliteFile: path.join(dir, 'payments.sqlite') }))];
  return {
    db,
    admin: db,
    handles: all,
    async close() {
      for (const h of all) await h.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
