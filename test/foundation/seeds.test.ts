/**
 * The seed fixture (seeds/fixture.ts): the banks and card issuers, four users each with a USD
 * checking account and a card with 50+ transactions over 3+ months, 20+ merchants in 5+ categories
 * (some outside the US), balanced entries within funds and limits; deterministic; seeded once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrate, openDb } from '../../lib/db.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';
import { describe, expect, it } from 'vitest';
import { buildFixture, generateFixture, HISTORY_END, HISTORY_START } from '../../seeds/fixture.js';
import { prepareDb } from '../../runtime/database.js';
import { SEEDS } from '../../seeds/load.js';

const f = buildFixture();

describe('seed fixture', () => {
  it('has the four banks and three card issuers', () => {
    expect(
      f.institutions
        .filter((i) => i.kind === 'BANK')
        .map((i) => i.name)
        .sort(),
    ).toEqual(['Citigroup', 'JPMorgan Chase', 'U.S. Bancorp', 'Wells Fargo']);
    expect(
      f.institutions
        .filter((i) => i.kind === 'CARD_ISSUER')
        .map((i) => i.name)
        .sort(),
    ).toEqual(['American Express', 'Mastercard', 'PayPal']);
  });

  it('gives alice, bob, carol and dave a USD checking account and a card with 50+ transactions over 3+ months', () => {
    for (const handle of ['alice', 'bob', 'carol', 'dave']) {
      const user = f.users.find((u) => u.handle === handle)!;
      const accounts = f.accounts.filter((a) => a.userId === user.id);
      expect(accounts.find((a) => a.kind === 'CHECKING')?.currency).toBe('USD');
      const card = accounts.find((a) => a.kind === 'CREDIT_CARD')!;
      expect(card.creditLimitMinor! >= 200000n).toBe(true);
      const ids = new Set(accounts.map((a) => a.id));
      const entries = f.entries.filter((e) => e.postings.some((p) => ids.has(p.accountId)));
      expect(entries.length).toBeGreaterThanOrEqual(50);
      const times = entries.map((e) => Date.parse(e.postedAt));
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(90 * 86_400_000);
    }
  });

  it('has 20+ merchants in 5+ categories, some outside the US', () => {
    expect(f.merchants.length).toBeGreaterThanOrEqual(20);
    expect(new Set(f.merchants.map((m) => m.category)).size).toBeGreaterThanOrEqual(5);
    expect(f.merchants.filter((m) => m.country !== 'US').length).toBeGreaterThanOrEqual(3);
  });

  it('balances every journal entry and keeps balances within funds and limits', () => {
    const balances = new Map<string, bigint>();
    for (const e of f.entries) {
      expect(e.postings.reduce((s, p) => s + p.amountMinor, 0n)).toBe(0n);
      for (const p of e.postings) balances.set(p.accountId, (balances.get(p.accountId) ?? 0n) + p.amountMinor);
      expect(e.postedAt >= HISTORY_START && e.postedAt <= `${HISTORY_END}T23:59:59.999Z`).toBe(true);
    }
    for (const a of f.accounts) {
      const b = balances.get(a.id) ?? 0n;
      if (a.kind === 'CHECKING') expect(b >= 0n).toBe(true);
      if (a.kind === 'CREDIT_CARD') expect(-b <= a.creditLimitMinor!).toBe(true);
    }
    expect([...balances.values()].reduce((s, b) => s + b, 0n)).toBe(0n);
  });

  it('references only known accounts, merchants and users, and gives offers to every user', () => {
    const ledgerIds = new Set([...f.accounts.map((a) => a.id), ...f.systemAccounts.map((s) => s.id)]);
    const merchantIds = new Set(f.merchants.map((m) => m.id));
    const userIds = new Set(f.users.map((u) => u.id));
    for (const e of f.entries) {
      for (const p of e.postings) {
        expect(ledgerIds.has(p.accountId)).toBe(true);
        if (p.merchantId) expect(merchantIds.has(p.merchantId)).toBe(true);
        if (p.counterpartyUserId) expect(userIds.has(p.counterpartyUserId)).toBe(true);
      }
    }
    for (const o of f.offers) expect(merchantIds.has(o.merchantId)).toBe(true);
    for (const u of f.users) expect(f.offers.some((o) => u.interests.includes(o.topic))).toBe(true);
  });

  it('is deterministic', () => {
    const g = generateFixture();
    expect(g).not.toBe(f);
    expect(g.entries.length).toBe(f.entries.length);
    expect(JSON.stringify(g.entries, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).toBe(
      JSON.stringify(f.entries, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    );
  });
});

describe('seeding a database (runtime/database.ts prepareDb)', () => {
  it('seeds once, and seeds a database whose first start died between migrating and seeding', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-seed-'));
    try {
      for (const name of ['accounts', 'payments'] as const) {
        // A first start that died after migrating, before seeding.
        const half = openDb({ sqliteFile: path.join(dir, `${name}.sqlite`) });
        await migrate(half, SUBGRAPHS[name].migrations);
        await half.destroy();
        const first = await prepareDb(name, dir);
        expect(first.seeded).toBe(true);
        const table = name === 'accounts' ? 'users' : 'journal_entries';
        const count = async (db: typeof first.db) => Number(((await db(table).count({ n: '*' }).first()) as { n: number | string }).n);
        const rows = await count(first.db);
        expect(rows).toBeGreaterThan(0);
        await first.db.destroy();
        const again = await prepareDb(name, dir);
        expect(again.seeded).toBe(false);
        expect(await count(again.db)).toBe(rows);
        await again.db.destroy();
      }
      // A database seeded before seeds were marked (no marker table) is not seeded again.
      const legacyDir = path.join(dir, 'legacy');
      const legacy = openDb({ sqliteFile: path.join(legacyDir, 'merchants.sqlite') });
      await migrate(legacy, SUBGRAPHS.merchants.migrations);
      await SEEDS.merchants.load(legacy, buildFixture());
      await legacy.destroy();
      const reopened = await prepareDb('merchants', legacyDir);
      expect(reopened.seeded).toBe(false);
      expect(await reopened.db('merchants').count({ n: '*' }).first()).toEqual({ n: buildFixture().merchants.length });
      await reopened.db.destroy();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
