/** Shared helpers of the money-movement tests (test/money-*.test.ts). */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { expect } from 'vitest';
import { openDb } from '../lib/db.js';
import { prepareDb } from '../runtime/database.js';
import { toBigInt } from '../lib/money.js';
import { EXTERNAL_ACCOUNT_ID } from '../seeds/fixture.js';
import { createLogger } from '../lib/log.js';
import { createLedger, type NewEntry } from '../subgraphs/payments/ledger/index.js';
import { createPaymentsServices, type PaymentsServices } from '../subgraphs/payments/services.js';
import type { TestStack } from './helpers/stack.js';

export const SEND = /* GraphQL */ `
  mutation SendMoney($input: SendTransferInput!) {
    sendTransfer(input: $input) {
      transfer { id status amount { amount currency } note from { id } recipient { id handle } createdAt }
      userErrors { code field message }
    }
  }
`;

export const PAY = /* GraphQL */ `
  mutation Pay($input: MakePurchaseInput!) {
    makePurchase(input: $input) {
      purchase { id status amount { amount currency } merchant { id name country } account { id } createdAt }
      userErrors { code field message }
    }
  }
`;

export const HISTORY = /* GraphQL */ `
  query History($accountId: ID!, $first: Int, $after: String) {
    account(id: $accountId) {
      id
      transactions(first: $first, after: $after) {
        totalCount
        edges { cursor node { id kind direction status amount { amount currency } description postedAt merchant { id name category country } counterparty { id handle name } } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
`;

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

/** Every ledger account's cached balance. */
export async function balances(db: Knex): Promise<Map<string, bigint>> {
  const rows = (await db('ledger_accounts').select('id', 'balance_minor')) as { id: string; balance_minor: unknown }[];
  return new Map(rows.map((r) => [r.id, toBigInt(r.balance_minor)]));
}

export async function balanceOf(db: Knex, accountId: string): Promise<bigint> {
  const b = (await balances(db)).get(accountId);
  if (b === undefined) throw new Error(`no account ${accountId}`);
  return b;
}

/** Row counts of every table money movement writes. */
export async function writeCounts(db: Knex): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['journal_entries', 'postings', 'transfers', 'purchases', 'outbox_events', 'idempotency_keys']) {
    const row = (await db(t).count({ n: '*' }).first()) as { n: unknown };
    out[t] = Number(row.n);
  }
  return out;
}

/** Snapshot of everything money movement could change; compare before and after a refusal. */
export async function snapshot(db: Knex): Promise<{ balances: Record<string, string>; counts: Record<string, number> }> {
  const b = await balances(db);
  return { balances: Object.fromEntries([...b].map(([k, v]) => [k, v.toString()])), counts: await writeCounts(db) };
}

/**
 * The collaborators one payments process builds on a database handle (its ledger with its group
 * commit, its movements, its event feed), for tests that move money without the gateway. Build
 * one per handle and reuse it: movements submitted to the same services share group commits.
 */
export function paymentsServices(db: Knex): PaymentsServices {
  return createPaymentsServices({ db, logger: createLogger('payments') });
}

/**
 * Posts raw journal entries (deposits, rule probes) through the ledger's group commit, the API
 * movements use: each entry is checked by the ledger's rules under its lock and posted, or the
 * returned function rejects with the ledger's LedgerError and nothing is written.
 */
export function entryPoster(db: Knex): (entry: NewEntry) => Promise<void> {
  const post = createLedger({ db, logger: createLogger('payments') }).groupCommit<NewEntry, Error | null>(async (batch, entries) => {
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

/** Test set-up: money arriving from outside (a deposit), through the ledger. */
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

export async function send(stack: TestStack, token: string, input: Record<string, unknown>): Promise<{ transfer: TransferOut | null; userErrors: UserErrorOut[] }> {
  const res = await stack.gql<{ sendTransfer: { transfer: TransferOut | null; userErrors: UserErrorOut[] } }>(SEND, { input }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.sendTransfer;
}

export async function pay(stack: TestStack, token: string, input: Record<string, unknown>): Promise<{ purchase: PurchaseOut | null; userErrors: UserErrorOut[] }> {
  const res = await stack.gql<{ makePurchase: { purchase: PurchaseOut | null; userErrors: UserErrorOut[] } }>(PAY, { input }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.makePurchase;
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
  const res = await stack.gql<{ account: { transactions: { edges: { node: HistoryNode }[] } } }>(HISTORY, { accountId, first }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.account.transactions.edges.map((e) => e.node);
}

export interface PaymentsDb {
  /** The first handle. */
  db: Knex;
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
    const name = `paygraph_test_${randomBytes(6).toString('hex')}`;
    const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
    await admin.raw(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const { db } = await prepareDb('payments', ':memory:', url.toString());
    const all = [db, ...Array.from({ length: handles - 1 }, () => openDb({ postgresUrl: url.toString(), schema: 'payments' }))];
    return {
      db,
      handles: all,
      async close() {
        for (const h of all) await h.destroy();
        await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.destroy();
      },
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-money-'));
  const { db } = await prepareDb('payments', dir);
  const all = [db, ...Array.from({ length: handles - 1 }, () => openDb({ sqliteFile: path.join(dir, 'payments.sqlite') }))];
  return {
    db,
    handles: all,
    async close() {
      for (const h of all) await h.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
