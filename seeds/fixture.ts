/**
 * The one fixture every subgraph seeds from, so that they agree: institutions, users, linked
 * accounts and their consents, merchants, offers and interests, and months of ledger history.
 *
 * Deterministic: a fixed PRNG seed and a fixed calendar (2026-07-01 .. 2026-11-20), so every run
 * and every machine gets the same data. Amounts are integer minor units (bigint).
 */

import type { AccountKind, InstitutionKind } from '../subgraphs/accounts/data.js';
import type { MerchantCategory } from '../subgraphs/merchants/data.js';
import type { TransactionKind } from '../subgraphs/payments/data.js';

import { createHash } from 'node:crypto';

export interface Institution {
  id: string;
  name: string;
  kind: InstitutionKind;
}
export interface User {
  id: string;
  handle: string;
  name: string;
  country: string;
  /** Declared, non-financial interests (profile settings): the only signal the ads subgraph gets. */
  interests: string[];
}
export interface Account {
  id: string;
  userId: string;
  institutionId: string;
  kind: AccountKind;
  displayName: string;
  mask: string;
  currency: string;
  /** Credit limit in minor units for cards; null for deposit accounts. */
  creditLimitMinor: bigint | null;
}
export interface Merchant {
  id: string;
  name: string;
  category: MerchantCategory;
  mcc: string;
  country: string;
  city: string;
  /** Typical ticket, minor units. */
  minMinor: number;
  maxMinor: number;
  /** Relative popularity. */
  weight: number;
}
export interface Offer {
  id: string;
  headline: string;
  merchantId: string;
  topic: string;
}
/** A ledger account that is not a user's: merchant settlement, the outside world, fee income. */
export interface SystemLedgerAccount {
  id: string;
  kind: 'MERCHANT' | 'EXTERNAL' | 'FEES';
  currency: string;
  merchantId: string | null;
}
export interface Posting {
  accountId: string;
  /** Signed minor units: positive is money into the account, negative money out. */
  amountMinor: bigint;
  merchantId?: string;
  counterpartyUserId?: string;
}
export interface JournalEntry {
  id: string;
  kind: TransactionKind;
  postedAt: string;
  description: string;
  postings: Posting[];
}
/** A user's consent to one institution's data (subgraphs/accounts/consent/): every scope, payments only. */
export interface Consent {
  id: string;
  userId: string;
  institutionId: string;
  scopes: string[];
  disclosureVersion: string;
  grantedAt: string;
  expiresAt: string;
  /** When the user revoked it; null: never. */
  revokedAt: string | null;
}
export interface Fixture {
  institutions: Institution[];
  users: User[];
  accounts: Account[];
  consents: Consent[];
  merchants: Merchant[];
  offers: Offer[];
  systemAccounts: SystemLedgerAccount[];
  entries: JournalEntry[];
}

export const EXTERNAL_ACCOUNT_ID = 'sys_external_usd';
export const FEES_ACCOUNT_ID = 'sys_fees_usd';
export const settlementAccountId = (merchantId: string): string => `settle_${merchantId}`;

const INSTITUTIONS: Institution[] = [
  { id: 'ins_chase', name: 'JPMorgan Chase', kind: 'BANK' },
  { id: 'ins_wells_fargo', name: 'Wells Fargo', kind: 'BANK' },
  { id: 'ins_citi', name: 'Citigroup', kind: 'BANK' },
  { id: 'ins_us_bancorp', name: 'U.S. Bancorp', kind: 'BANK' },
  { id: 'ins_paypal', name: 'PayPal', kind: 'CARD_ISSUER' },
  { id: 'ins_amex', name: 'American Express', kind: 'CARD_ISSUER' },
  { id: 'ins_mastercard', name: 'Mastercard', kind: 'CARD_ISSUER' },
];

interface Persona {
  user: User;
  bank: string;
  checkingName: string;
  checkingMask: string;
  issuer: string;
  cardName: string;
  cardMask: string;
  creditLimit: bigint;
  employer: string;
  payroll: bigint;
  openingDeposit: bigint;
}

const PERSONAS: Persona[] = [
  {
    user: { id: 'usr_alice', handle: 'alice', name: 'Alice Johnson', country: 'US', interests: ['coffee', 'travel', 'music'] },
    bank: 'ins_chase',
    checkingName: 'Chase Total Checking',
    checkingMask: '4821',
    issuer: 'ins_amex',
    cardName: 'American Express Gold Card',
    cardMask: '1007',
    creditLimit: 500000n,
    employer: 'Northwind Health',
    payroll: 287450n,
    openingDeposit: 412000n,
  },
  {
    user: { id: 'usr_bob', handle: 'bob', name: 'Bob Martinez', country: 'US', interests: ['fitness', 'electronics', 'food'] },
    bank: 'ins_wells_fargo',
    checkingName: 'Wells Fargo Everyday Checking',
    checkingMask: '7730',
    issuer: 'ins_paypal',
    cardName: 'PayPal Cashback Mastercard',
    cardMask: '5562',
    creditLimit: 350000n,
    employer: 'Contoso Logistics',
    payroll: 231200n,
    openingDeposit: 268500n,
  },
  {
    user: { id: 'usr_carol', handle: 'carol', name: 'Carol Nguyen', country: 'US', interests: ['fashion', 'travel', 'home'] },
    bank: 'ins_citi',
    checkingName: 'Citi Regular Checking',
    checkingMask: '3094',
    issuer: 'ins_mastercard',
    cardName: 'Mastercard World Elite',
    cardMask: '8841',
    creditLimit: 600000n,
    employer: 'Fabrikam Design',
    payroll: 342000n,
    openingDeposit: 530000n,
  },
  {
    user: { id: 'usr_dave', handle: 'dave', name: 'Dave Okafor', country: 'US', interests: ['movies', 'gaming', 'food'] },
    bank: 'ins_us_bancorp',
    checkingName: 'U.S. Bank Smartly Checking',
    checkingMask: '6215',
    issuer: 'ins_amex',
    cardName: 'Blue Cash Everyday Card',
    cardMask: '2290',
    creditLimit: 250000n,
    employer: 'Tailspin Toys',
    payroll: 198700n,
    openingDeposit: 185000n,
  },
];

const MERCHANTS: Merchant[] = [
  {
    id: 'mer_whole_foods',
    name: 'Whole Foods Market',
    category: 'GROCERIES',
    mcc: '5411',
    country: 'US',
    city: 'Austin',
    minMinor: 1800,
    maxMinor: 14500,
    weight: 8,
  },
  {
    id: 'mer_trader_joes',
    name: "Trader Joe's",
    category: 'GROCERIES',
    mcc: '5411',
    country: 'US',
    city: 'Monrovia',
    minMinor: 1500,
    maxMinor: 9800,
    weight: 8,
  },
  { id: 'mer_safeway', name: 'Safeway', category: 'GROCERIES', mcc: '5411', country: 'US', city: 'Pleasanton', minMinor: 1200, maxMinor: 11000, weight: 5 },
  { id: 'mer_tesco', name: 'Tesco', category: 'GROCERIES', mcc: '5411', country: 'GB', city: 'London', minMinor: 900, maxMinor: 6500, weight: 1 },
  {
    id: 'mer_blue_bottle',
    name: 'Blue Bottle Coffee',
    category: 'RESTAURANTS',
    mcc: '5814',
    country: 'US',
    city: 'Oakland',
    minMinor: 450,
    maxMinor: 1400,
    weight: 10,
  },
  {
    id: 'mer_chipotle',
    name: 'Chipotle Mexican Grill',
    category: 'RESTAURANTS',
    mcc: '5814',
    country: 'US',
    city: 'Newport Beach',
    minMinor: 1050,
    maxMinor: 2900,
    weight: 7,
  },
  {
    id: 'mer_shake_shack',
    name: 'Shake Shack',
    category: 'RESTAURANTS',
    mcc: '5814',
    country: 'US',
    city: 'New York',
    minMinor: 1200,
    maxMinor: 3800,
    weight: 5,
  },
  { id: 'mer_pret', name: 'Pret A Manger', category: 'RESTAURANTS', mcc: '5812', country: 'GB', city: 'London', minMinor: 600, maxMinor: 1800, weight: 1 },
  { id: 'mer_uber', name: 'Uber', category: 'TRANSPORT', mcc: '4121', country: 'US', city: 'San Francisco', minMinor: 900, maxMinor: 5400, weight: 7 },
  { id: 'mer_lyft', name: 'Lyft', category: 'TRANSPORT', mcc: '4121', country: 'US', city: 'San Francisco', minMinor: 850, maxMinor: 4700, weight: 4 },
  { id: 'mer_delta', name: 'Delta Air Lines', category: 'TRAVEL', mcc: '3058', country: 'US', city: 'Atlanta', minMinor: 18900, maxMinor: 64000, weight: 1 },
  {
    id: 'mer_marriott',
    name: 'Marriott Hotels',
    category: 'TRAVEL',
    mcc: '3509',
    country: 'US',
    city: 'Bethesda',
    minMinor: 16500,
    maxMinor: 48000,
    weight: 1,
  },
  { id: 'mer_air_france', name: 'Air France', category: 'TRAVEL', mcc: '3007', country: 'FR', city: 'Paris', minMinor: 32000, maxMinor: 98000, weight: 1 },
  { id: 'mer_netflix', name: 'Netflix', category: 'ENTERTAINMENT', mcc: '4899', country: 'US', city: 'Los Gatos', minMinor: 1549, maxMinor: 2299, weight: 1 },
  { id: 'mer_spotify', name: 'Spotify', category: 'ENTERTAINMENT', mcc: '5815', country: 'SE', city: 'Stockholm', minMinor: 1199, maxMinor: 1999, weight: 1 },
  { id: 'mer_amc', name: 'AMC Theatres', category: 'ENTERTAINMENT', mcc: '7832', country: 'US', city: 'Leawood', minMinor: 1400, maxMinor: 4800, weight: 2 },
  { id: 'mer_target', name: 'Target', category: 'SHOPPING', mcc: '5311', country: 'US', city: 'Minneapolis', minMinor: 1200, maxMinor: 16000, weight: 5 },
  { id: 'mer_amazon', name: 'Amazon', category: 'SHOPPING', mcc: '5942', country: 'US', city: 'Seattle', minMinor: 899, maxMinor: 18000, weight: 7 },
  { id: 'mer_ikea', name: 'IKEA', category: 'SHOPPING', mcc: '5712', country: 'SE', city: 'Delft', minMinor: 2500, maxMinor: 42000, weight: 1 },
  { id: 'mer_best_buy', name: 'Best Buy', category: 'ELECTRONICS', mcc: '5732', country: 'US', city: 'Richfield', minMinor: 1999, maxMinor: 89900, weight: 2 },
  { id: 'mer_apple', name: 'Apple Store', category: 'ELECTRONICS', mcc: '5732', country: 'US', city: 'Cupertino', minMinor: 2900, maxMinor: 129900, weight: 1 },
  { id: 'mer_zara', name: 'Zara', category: 'APPAREL', mcc: '5651', country: 'ES', city: 'Arteixo', minMinor: 2599, maxMinor: 15900, weight: 2 },
  { id: 'mer_uniqlo', name: 'Uniqlo', category: 'APPAREL', mcc: '5651', country: 'JP', city: 'Tokyo', minMinor: 1490, maxMinor: 9990, weight: 2 },
  { id: 'mer_shell', name: 'Shell', category: 'FUEL', mcc: '5541', country: 'US', city: 'Houston', minMinor: 2800, maxMinor: 7400, weight: 4 },
  { id: 'mer_chevron', name: 'Chevron', category: 'FUEL', mcc: '5541', country: 'US', city: 'San Ramon', minMinor: 2600, maxMinor: 7900, weight: 3 },
  { id: 'mer_con_edison', name: 'Con Edison', category: 'UTILITIES', mcc: '4900', country: 'US', city: 'New York', minMinor: 6500, maxMinor: 18500, weight: 0 },
  {
    id: 'mer_xfinity',
    name: 'Comcast Xfinity',
    category: 'UTILITIES',
    mcc: '4899',
    country: 'US',
    city: 'Philadelphia',
    minMinor: 7999,
    maxMinor: 8999,
    weight: 0,
  },
];

const OFFERS: Offer[] = [
  { id: 'off_blue_bottle_1', headline: 'Your second pour-over is on us at Blue Bottle', merchantId: 'mer_blue_bottle', topic: 'coffee' },
  { id: 'off_delta_1', headline: 'Fly to 40 cities with 20% off economy fares', merchantId: 'mer_delta', topic: 'travel' },
  { id: 'off_air_france_1', headline: 'Paris this winter: Premium Economy upgrades', merchantId: 'mer_air_france', topic: 'travel' },
  { id: 'off_marriott_1', headline: 'Stay 3 nights, pay for 2 at Marriott', merchantId: 'mer_marriott', topic: 'travel' },
  { id: 'off_spotify_1', headline: 'Three months of Spotify Premium for $0', merchantId: 'mer_spotify', topic: 'music' },
  { id: 'off_best_buy_1', headline: 'Up to $150 off noise-cancelling headphones', merchantId: 'mer_best_buy', topic: 'electronics' },
  { id: 'off_apple_1', headline: 'Trade in your phone, get up to $630 credit', merchantId: 'mer_apple', topic: 'electronics' },
  { id: 'off_chipotle_1', headline: 'Free guac with any entrée this week', merchantId: 'mer_chipotle', topic: 'food' },
  { id: 'off_shake_shack_1', headline: 'Shake Shack: free fries with the app', merchantId: 'mer_shake_shack', topic: 'food' },
  { id: 'off_zara_1', headline: 'New season at Zara: members get early access', merchantId: 'mer_zara', topic: 'fashion' },
  { id: 'off_uniqlo_1', headline: 'Uniqlo HEATTECH from $14.90', merchantId: 'mer_uniqlo', topic: 'fashion' },
  { id: 'off_ikea_1', headline: 'IKEA Family: 15% off living-room furniture', merchantId: 'mer_ikea', topic: 'home' },
  { id: 'off_amc_1', headline: 'AMC Stubs: $5 Tuesdays are back', merchantId: 'mer_amc', topic: 'movies' },
  { id: 'off_netflix_1', headline: 'Netflix with ads, now $7.99', merchantId: 'mer_netflix', topic: 'movies' },
  { id: 'off_target_1', headline: 'Target Circle: 10% off games and consoles', merchantId: 'mer_target', topic: 'gaming' },
  { id: 'off_uber_1', headline: 'Two Uber rides to the gym, 50% off', merchantId: 'mer_uber', topic: 'fitness' },
];

const P2P_NOTES = ['Dinner split', 'Concert tickets', 'Groceries', 'Birthday gift', 'Rent share', 'Cab home', 'Coffee run', 'Weekend trip'];

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const HISTORY_START = '2026-07-01';
export const HISTORY_END = '2026-11-20';

/** The disclosure the seeded consents were granted under (an earlier version stays valid for the consents granted under it). */
export const SEED_DISCLOSURE_VERSION = '2026-07-01';
/** dave revoked his consent to this institution (his checking account's bank): the demo's CONSENT_REQUIRED. */
export const REVOKED_SEED_CONSENT = { handle: 'dave', institutionId: 'ins_us_bancorp', revokedAt: '2026-11-15T09:30:00.000Z' };

/**
 * Every user's consents: one per institution they have an account at, every scope, granted at the
 * start of the seeded calendar for one year; dave's consent to his bank revoked (REVOKED_SEED_CONSENT).
 */
function seedConsents(users: readonly User[], accounts: readonly Account[]): Consent[] {
  const grantedAt = `${HISTORY_START}T00:00:00.000Z`;
  const expiresAt = new Date(Date.parse(grantedAt) + 365 * 86_400_000).toISOString();
  return users.flatMap((u) =>
    [...new Set(accounts.filter((a) => a.userId === u.id).map((a) => a.institutionId))].map((institutionId) => ({
      // An id that names no one (a bank overseeing its customers sees consent ids).
      id: `cns_seed_${createHash('sha256').update(`${u.id}|${institutionId}`).digest('base64url').slice(0, 16)}`,
      userId: u.id,
      institutionId,
      scopes: ['ACCOUNT_DETAILS', 'BALANCES', 'MONEY_MOVEMENT', 'TRANSACTIONS'],
      disclosureVersion: SEED_DISCLOSURE_VERSION,
      grantedAt,
      expiresAt,
      revokedAt: u.handle === REVOKED_SEED_CONSENT.handle && institutionId === REVOKED_SEED_CONSENT.institutionId ? REVOKED_SEED_CONSENT.revokedAt : null,
    })),
  );
}

/** Generates the fixture afresh (buildFixture caches it). */
export function generateFixture(): Fixture {
  const rand = prng(0x5eed2026);
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

  const users = PERSONAS.map((p) => p.user);
  const accounts: Account[] = [];
  for (const p of PERSONAS) {
    const h = p.user.handle;
    accounts.push({
      id: `acc_${h}_checking`,
      userId: p.user.id,
      institutionId: p.bank,
      kind: 'CHECKING',
      displayName: p.checkingName,
      mask: p.checkingMask,
      currency: 'USD',
      creditLimitMinor: null,
    });
    accounts.push({
      id: `acc_${h}_card`,
      userId: p.user.id,
      institutionId: p.issuer,
      kind: 'CREDIT_CARD',
      displayName: p.cardName,
      mask: p.cardMask,
      currency: 'USD',
      creditLimitMinor: p.creditLimit,
    });
  }
  const systemAccounts: SystemLedgerAccount[] = [
    { id: EXTERNAL_ACCOUNT_ID, kind: 'EXTERNAL', currency: 'USD', merchantId: null },
    { id: FEES_ACCOUNT_ID, kind: 'FEES', currency: 'USD', merchantId: null },
    ...MERCHANTS.map((m) => ({ id: settlementAccountId(m.id), kind: 'MERCHANT' as const, currency: 'USD', merchantId: m.id })),
  ];

  // Running balances, to keep every seeded movement within funds and limits.
  const bal = new Map<string, bigint>();
  const entries: JournalEntry[] = [];
  let seq = 0;
  const post = (kind: TransactionKind, at: Date, description: string, postings: Posting[]) => {
    let sum = 0n;
    for (const p of postings) {
      sum += p.amountMinor;
      bal.set(p.accountId, (bal.get(p.accountId) ?? 0n) + p.amountMinor);
    }
    if (sum !== 0n) throw new Error(`unbalanced seed entry ${description}`);
    seq += 1;
    entries.push({ id: `je_seed_${String(seq).padStart(5, '0')}`, kind, postedAt: at.toISOString(), description, postings });
  };
  const at = (day: Date, hour: number, minute: number) => {
    const d = new Date(day);
    d.setUTCHours(hour, minute, int(0, 59), int(0, 999));
    return d;
  };

  const shoppable = MERCHANTS.filter((m) => m.weight > 0);
  const totalWeight = shoppable.reduce((s, m) => s + m.weight, 0);
  const weightedMerchant = () => {
    let r = rand() * totalWeight;
    for (const m of shoppable) {
      r -= m.weight;
      if (r < 0) return m;
    }
    return shoppable[shoppable.length - 1]!;
  };

  const start = new Date(`${HISTORY_START}T00:00:00.000Z`);
  const end = new Date(`${HISTORY_END}T00:00:00.000Z`);
  for (let day = new Date(start); day <= end; day = new Date(day.getTime() + 86_400_000)) {
    const dom = day.getUTCDate();
    for (const p of PERSONAS) {
      const checking = `acc_${p.user.handle}_checking`;
      const card = `acc_${p.user.handle}_card`;
      if (day.getTime() === start.getTime()) {
        post('DEPOSIT', at(day, 9, 5), `Opening deposit, ${p.checkingName}`, [
          { accountId: EXTERNAL_ACCOUNT_ID, amountMinor: -p.openingDeposit },
          { accountId: checking, amountMinor: p.openingDeposit },
        ]);
      }
      if (dom === 1 || dom === 15) {
        post('DEPOSIT', at(day, 6, int(0, 30)), `Payroll, ${p.employer}`, [
          { accountId: EXTERNAL_ACCOUNT_ID, amountMinor: -p.payroll },
          { accountId: checking, amountMinor: p.payroll },
        ]);
      }
      if (dom === 3) {
        const bill = MERCHANTS.find((m) => m.id === (p.user.handle === 'alice' || p.user.handle === 'carol' ? 'mer_con_edison' : 'mer_xfinity'))!;
        const amount = BigInt(int(bill.minMinor, bill.maxMinor));
        if ((bal.get(checking) ?? 0n) >= amount) {
          post('PURCHASE', at(day, 4, int(0, 59)), `${bill.name} autopay`, [
            { accountId: checking, amountMinor: -amount, merchantId: bill.id },
            { accountId: settlementAccountId(bill.id), amountMinor: amount, merchantId: bill.id },
          ]);
        }
      }
      if (dom === 25) {
        const owed = -(bal.get(card) ?? 0n);
        const pay = owed < (bal.get(checking) ?? 0n) - 20000n ? owed : 0n;
        if (pay > 0n) {
          post('TRANSFER', at(day, 13, int(0, 59)), `Payment to ${p.cardName}`, [
            { accountId: checking, amountMinor: -pay },
            { accountId: card, amountMinor: pay },
          ]);
        }
      }
      const purchases = int(0, 3);
      for (let i = 0; i < purchases; i++) {
        const m = weightedMerchant();
        const amount = BigInt(int(m.minMinor, m.maxMinor));
        const useCard = rand() < 0.65;
        const from = useCard ? card : checking;
        const available = useCard ? p.creditLimit + (bal.get(card) ?? 0n) : (bal.get(checking) ?? 0n);
        if (available < amount) continue;
        const when = at(day, int(7, 21), int(0, 59));
        post('PURCHASE', when, m.name, [
          { accountId: from, amountMinor: -amount, merchantId: m.id },
          { accountId: settlementAccountId(m.id), amountMinor: amount, merchantId: m.id },
        ]);
        if (useCard && m.country !== 'US') {
          const fee = (amount * 3n) / 100n;
          if (fee > 0n) {
            post('FEE', new Date(when.getTime() + 1000), `Foreign transaction fee, ${m.name}`, [
              { accountId: card, amountMinor: -fee },
              { accountId: FEES_ACCOUNT_ID, amountMinor: fee },
            ]);
          }
        }
        if (rand() < 0.03) {
          const refundDay = new Date(when.getTime() + int(2, 5) * 86_400_000);
          if (refundDay <= end) {
            post('REFUND', refundDay, `Refund, ${m.name}`, [
              { accountId: settlementAccountId(m.id), amountMinor: -amount, merchantId: m.id },
              { accountId: from, amountMinor: amount, merchantId: m.id },
            ]);
          }
        }
      }
      if (rand() < 0.12) {
        const other = pick(PERSONAS.filter((o) => o !== p));
        const amount = BigInt(int(8, 120) * 100 + pick([0, 0, 50, 25, 75]));
        if ((bal.get(checking) ?? 0n) >= amount) {
          const note = pick(P2P_NOTES);
          post('TRANSFER', at(day, int(10, 22), int(0, 59)), note, [
            { accountId: checking, amountMinor: -amount, counterpartyUserId: other.user.id },
            { accountId: `acc_${other.user.handle}_checking`, amountMinor: amount, counterpartyUserId: p.user.id },
          ]);
        }
      }
    }
  }
  // Refunds can be dated after later entries; the ledger is ordered by time.
  entries.sort((a, b) => (a.postedAt < b.postedAt ? -1 : a.postedAt > b.postedAt ? 1 : a.id < b.id ? -1 : 1));
  return {
    institutions: INSTITUTIONS,
    users,
    accounts,
    consents: seedConsents(users, accounts),
    merchants: MERCHANTS,
    offers: OFFERS,
    systemAccounts,
    entries,
  };
}

let cached: Fixture | null = null;
export function buildFixture(): Fixture {
  cached ??= generateFixture();
  return cached;
}
