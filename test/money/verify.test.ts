/**
 * Ledger verification: the exported check on a running stack's database after money moved
 * through the gateway, and `npm run ledger:verify` (scripts/ledger-verify.ts) as a process.
 */
import { execFile } from 'node:child_process';
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBigInt } from '../../lib/money.js';
import { callInternal } from '../../lib/transport/internal-client.js';
import { signerOf } from '../helpers/signing.js';
import { prepareDb } from '../../runtime/database.js';
import { formatVerification, verifyLedger } from '../../subgraphs/payments/verify.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { newKey, pay, send } from '../helpers/money.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function runVerify(dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'scripts/ledger-verify.ts')],
      { cwd: ROOT, env: { ...process.env, PAYGRAPH_DATA_DIR: dataDir, DATABASE_URL: '' } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('verifyLedger on a stack', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('passes after transfers and purchases, and names a corrupted cached balance', async () => {
    const alice = await stack.token('alice');
    expect(
      (
        await send(stack, alice, {
          fromAccountId: 'acc_alice_checking',
          toHandle: 'bob',
          amount: { amount: '10.00', currency: 'USD' },
          idempotencyKey: newKey(),
        })
      ).userErrors,
    ).toEqual([]);
    expect(
      (await pay(stack, alice, { accountId: 'acc_alice_card', merchantId: 'mer_zara', amount: { amount: '59.90', currency: 'USD' }, idempotencyKey: newKey() }))
        .userErrors,
    ).toEqual([]);
    const db = stack.dbs.payments;
    const ok = await verifyLedger(db);
    expect(ok.problems).toEqual([]);
    expect(ok).toMatchObject({ ok: true, transfers: 1, purchases: 1, events: 2 });
    expect(ok.postings).toBe(2 * ok.entries);
    expect(formatVerification(ok)).toMatch(/OK: the ledger balances/);

    const row = (await db('ledger_accounts').where({ id: 'acc_bob_checking' }).first()) as { balance_minor: unknown };
    const original = toBigInt(row.balance_minor);
    await db('ledger_accounts')
      .where({ id: 'acc_bob_checking' })
      .update({ balance_minor: (original + 1n).toString() });
    try {
      const bad = await verifyLedger(db);
      expect(bad.ok).toBe(false);
      expect(bad.problems.some((p) => p.startsWith('account acc_bob_checking: cached balance'))).toBe(true);
      expect(formatVerification(bad)).toMatch(/FAILED: \d+ problem/);
    } finally {
      await db('ledger_accounts').where({ id: 'acc_bob_checking' }).update({ balance_minor: original.toString() });
    }
  });
});

describe('posted ledger rows on a stack', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
    // A row in every append-only table: a transfer, a purchase (and their events), a freeze.
    const alice = await stack.token('alice');
    expect(
      (
        await send(stack, alice, {
          fromAccountId: 'acc_alice_checking',
          toHandle: 'bob',
          amount: { amount: '1.00', currency: 'USD' },
          idempotencyKey: newKey(),
        })
      ).userErrors,
    ).toEqual([]);
    expect(
      (await pay(stack, alice, { accountId: 'acc_alice_card', merchantId: 'mer_zara', amount: { amount: '2.00', currency: 'USD' }, idempotencyKey: newKey() }))
        .userErrors,
    ).toEqual([]);
    const freeze = { accountId: 'acc_dave_card', alertId: 'alert_test' };
    expect(await callInternal(signerOf('alerts'), 'payments', stack.subgraphs.payments.url.replace(/\/graphql$/, ''), 'freeze', freeze)).toEqual({
      frozen: true,
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each(['journal_entries', 'postings', 'transfers', 'purchases', 'outbox_events', 'account_freezes'])(
    '%s refuses UPDATE, DELETE and (PostgreSQL) TRUNCATE',
    async (table) => {
      const db = stack.dbs.payments;
      const before = (await db(table).count({ n: '*' }).first()) as { n: number | string };
      expect(Number(before.n)).toBeGreaterThan(0);
      // PostgreSQL: the payments service's role may only SELECT and INSERT them (lib/db-roles.ts),
      // and the triggers refuse even the server's admin. SQLite: the triggers refuse.
      const attempts: [Knex, RegExp][] = isSqlite(db)
        ? [[db, /append-only/]]
        : [
            [db, /permission denied/],
            [stack.adminDb('payments'), /append-only/],
          ];
      for (const [conn, refusal] of attempts) {
        await expect(conn(table).update({ id: conn.raw('id') })).rejects.toThrow(refusal);
        await expect(conn(table).delete()).rejects.toThrow(refusal);
        if (!isSqlite(conn)) await expect(conn.raw(`TRUNCATE ${table} CASCADE`)).rejects.toThrow(refusal);
      }
      expect(await db(table).count({ n: '*' }).first()).toEqual(before);
    },
  );
});

describe('npm run ledger:verify', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-verify-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints what it checked, exits 0 on a sound ledger, 1 on a mismatch, 2 without a database', async () => {
    const { db } = await prepareDb('payments', dir);
    await db.destroy();
    const good = await runVerify(dir);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/Checked 37 ledger accounts, 1147 journal entries, 2294 postings/);
    expect(good.stdout).toMatch(/USD: postings total 0\.00, cached balances total 0\.00/);

    const { db: db2 } = await prepareDb('payments', dir);
    await db2('ledger_accounts').where({ id: 'acc_carol_card' }).update({ balance_minor: 0 });
    await db2.destroy();
    const bad = await runVerify(dir);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/acc_carol_card: cached balance 0 != sum of postings -141705/);

    const none = await runVerify(path.join(dir, 'missing'));
    expect(none.code).toBe(2);
  });
});
