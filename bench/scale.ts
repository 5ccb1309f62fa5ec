/**
 * `npm run bench -- --scale`: how each cost grows with the work (docs/performance.md, "Cost
 * curves"). On the bench's stack it seeds 10,000 users (each with a checking account, in the
 * accounts and payments databases) and an account with 100,000 postings beside one with 100, then
 * measures:
 *   - the first page of history (20 of them, with totalCount) through the gateway, 100,000 postings
 *     against 100, side by side: history_p50_100k_over_100;
 *   - in-process ledger throughput with 1, 8 and 64 concurrent callers (alternated rounds);
 *   - alert latency, purchase commit to receipt, with 1, 100 and 1,000 subscribers, and the
 *     process's heap per idle live subscription at the largest count (clients, gateway and alerts
 *     service all live in this process, so it is an upper bound for the gateway's share).
 *   - inclusion proofs through the gateway's GET /audit/proof/inclusion, for random indexes at the
 *     log's full size, on fresh stacks of their own (nothing left over from the steps before), one
 *     per size of the curve, each log seeded (bench/audit-seed.ts) before any proof is timed; each
 *     size side by side with the smallest: proof_p50_1m_over_1k.
 * Every curve is also drawn to bench/results.png (bench/chart.ts).
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Knex } from 'knex';
import { signToken } from '../lib/auth.js';
import { DEFAULT_SQLITE_DRIVER, insertRows } from '../lib/db.js';
import type { Stack } from '../runtime/stack.js';
import { EXTERNAL_ACCOUNT_ID } from '../seeds/fixture.js';
import { verifyLedger } from '../subgraphs/payments/verify.js';
import { httpRequest } from '../lib/transport/http-client.js';
import { leafBytes } from '../lib/transparency/leaf.js';
import { equalHashes, leafHash, verifyInclusion } from '../lib/transparency/merkle.js';
import { alertRun, summarize } from './alerts.js';
import type { Curve } from './chart.js';
import { assertVerified, ledgerLeg, paymentsDb } from './ledger.js';
import { alternate, type LegStats } from './measure.js';
import { seedAuditLog } from './audit-seed.js';

export interface ScaleSettings {
  users: number;
  postings: number;
  smallPostings: number;
  callers: readonly number[];
  subscribers: readonly number[];
  alertSamples: number;
  /** Audit log sizes of the proof curve, smallest first (one stack each; every larger one is timed beside the smallest). */
  proofSizes: readonly number[];
}

export const SCALE_FULL: ScaleSettings = {
  users: 10_000,
  postings: 100_000,
  smallPostings: 100,
  callers: [1, 8, 64],
  subscribers: [1, 100, 1000],
  alertSamples: 10,
  proofSizes: [1_000, 10_000, 100_000, 1_000_000],
};
/** For the harness test: every step on small numbers. */
export const SCALE_TINY: ScaleSettings = {
  users: 200,
  postings: 1_000,
  smallPostings: 10,
  callers: [1, 8],
  subscribers: [1, 5],
  alertSamples: 2,
  proofSizes: [100, 2_000],
};

const CHUNK = 500;

async function chunked(db: Knex, table: string, rows: Record<string, unknown>[]): Promise<void> {
  await db.transaction(async (trx) => {
    for (let i = 0; i < rows.length; i += CHUNK) await insertRows(trx, table, rows.slice(i, i + CHUNK));
  });
}

/** `n` users, one checking account each, in both databases that know them. */
async function seedUsers(stack: Stack, n: number): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => `scale${String(i).padStart(5, '0')}`);
  await chunked(
    stack.dbs.accounts,
    'users',
    ids.map((h) => ({ id: `usr_${h}`, handle: h, name: `Scale ${h}`, country: 'US' })),
  );
  await chunked(
    stack.dbs.accounts,
    'accounts',
    ids.map((h, i) => ({
      id: `acc_${h}`,
      user_id: `usr_${h}`,
      institution_id: 'ins_chase',
      kind: 'CHECKING',
      display_name: 'Checking',
      mask: String(1000 + (i % 9000)),
      currency: 'USD',
    })),
  );
  // Each user's consent to the institution, as a grant stores it (subgraphs/accounts/consent/): the curves measure served data.
  const now = Date.now();
  await chunked(
    stack.dbs.accounts,
    'consents',
    ids.map((h) => ({
      id: `cns_scale_${h}`,
      user_id: `usr_${h}`,
      institution_id: 'ins_chase',
      scopes: JSON.stringify(['ACCOUNT_DETAILS', 'BALANCES', 'MONEY_MOVEMENT', 'TRANSACTIONS']),
      purpose: 'PAYMENTS',
      disclosure_version: 'bench',
      granted_at: new Date(now - 86_400_000).toISOString(),
      expires_at: new Date(now + 30 * 86_400_000).toISOString(),
      idempotency_key: `bench-${h}`,
      request_hash: '0'.repeat(64),
    })),
  );
  await chunked(
    stack.dbs.payments,
    'parties',
    ids.map((h) => ({ user_id: `usr_${h}`, handle: h, country: 'US' })),
  );
  await chunked(
    stack.dbs.payments,
    'ledger_accounts',
    ids.map((h) => ({ id: `acc_${h}`, owner_user_id: `usr_${h}`, kind: 'CHECKING', currency: 'USD', balance_minor: 0, frozen: false })),
  );
}

/** `n` balanced deposits of 0.01 into `accountId` (journal entries and both postings), cached balances moved to match. */
async function seedHistory(db: Knex, accountId: string, n: number): Promise<void> {
  const t0 = Date.parse('2026-01-01T00:00:00.000Z');
  const entries: Record<string, unknown>[] = [];
  const postings: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const id = `je_${accountId}_${i}`;
    const at = new Date(t0 + i * 1000).toISOString();
    entries.push({ id, kind: 'DEPOSIT', description: 'Scale deposit', posted_at: at });
    postings.push({
      entry_id: id,
      account_id: EXTERNAL_ACCOUNT_ID,
      amount_minor: -1,
      currency: 'USD',
      posted_at: at,
      merchant_id: null,
      counterparty_user_id: null,
    });
    postings.push({ entry_id: id, account_id: accountId, amount_minor: 1, currency: 'USD', posted_at: at, merchant_id: null, counterparty_user_id: null });
  }
  await chunked(db, 'journal_entries', entries);
  await chunked(db, 'postings', postings);
  await db('ledger_accounts').where({ id: accountId }).increment({ balance_minor: n, posting_count: n });
  await db('ledger_accounts').where({ id: EXTERNAL_ACCOUNT_ID }).decrement('balance_minor', n);
  await db('ledger_accounts').where({ id: EXTERNAL_ACCOUNT_ID }).increment('posting_count', n);
}

const HISTORY = `query History($id: ID!) { account(id: $id) { id transactions(first: 20) { totalCount
  edges { cursor node { id kind direction amount { amount currency } description postedAt } } pageInfo { hasNextPage endCursor } } } }`;

/** Full garbage collection, when the flag can be set at run time (it can on Node 20). */
function collect(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

export interface ScaleDeps {
  stack: Stack;
  jwtSecret: string;
  seconds: number;
  warmup: number;
  progress: (m: string) => void;
  /** The bench's side-by-side runner (bench/run.ts sideBySide, bound to its settings). */
  sideBySide: (a: () => Promise<void>, b: () => Promise<void>) => Promise<[LegStats, LegStats]>;
  post: (url: string, body: string, headers: Record<string, string>) => Promise<unknown>;
  /** Another stack like the bench's (its own databases): one per log of the proof curve. */
  startStack: () => Promise<Stack>;
}

export async function runScale(s: ScaleSettings, d: ScaleDeps): Promise<{ ratios: Record<string, number>; legs: Record<string, unknown>; curves: Curve[] }> {
  const ratios: Record<string, number> = {};
  const legs: Record<string, unknown> = {};
  const curves: Curve[] = [];
  const { stack, progress } = d;

  progress(`scale 1/5: seeding ${s.users} users, an account with ${s.postings} postings and one with ${s.smallPostings}`);
  const t0 = Date.now();
  await seedUsers(stack, s.users);
  await seedHistory(stack.dbs.payments, 'acc_scale00000', s.postings);
  await seedHistory(stack.dbs.payments, 'acc_scale00001', s.smallPostings);
  if (!(await verifyLedger(stack.dbs.payments)).ok) throw new Error('the seeded ledger does not verify');
  legs.scale_seed = { users: s.users, postings: s.postings, seconds: (Date.now() - t0) / 1000 };
  progress(`  seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; ledger:verify passed`);

  progress('scale 2/5: first page of history, long account vs short, through the gateway');
  const page = async (user: string, account: string) => {
    const headers = { authorization: `Bearer ${await signToken(d.jwtSecret, user, 'payments')}` };
    const body = JSON.stringify({ query: HISTORY, variables: { id: account } });
    return async () => void (await d.post(stack.url, body, headers));
  };
  const [long, short] = await d.sideBySide(await page('usr_scale00000', 'acc_scale00000'), await page('usr_scale00001', 'acc_scale00001'));
  legs.history_long = long;
  legs.history_short = short;
  ratios.history_p50_100k_over_100 = long.p50 / short.p50;
  curves.push({
    title: 'History page p50 vs postings',
    xLabel: 'postings on the account',
    yLabel: 'p50 ms',
    points: [
      { x: s.smallPostings, y: short.p50 },
      { x: s.postings, y: long.p50 },
    ],
  });
  progress(
    `  ${s.postings} postings p50 ${long.p50.toFixed(2)} ms, ${s.smallPostings} postings p50 ${short.p50.toFixed(2)} ms -> ratio ${(long.p50 / short.p50).toFixed(2)}`,
  );

  progress(`scale 3/5: ledger in process (${DEFAULT_SQLITE_DRIVER}) vs concurrent callers ${s.callers.join(', ')}`);
  const ldb = await paymentsDb(DEFAULT_SQLITE_DRIVER);
  try {
    const byCallers = await alternate(Object.fromEntries(s.callers.map((c) => [`c${c}`, ledgerLeg(ldb.db, c, `scale-${c}`)])), d.seconds, d.warmup);
    for (const c of s.callers) {
      legs[`ledger_callers_${c}`] = byCallers[`c${c}`];
      ratios[`transfers_per_sec_ledger_${c}_callers`] = byCallers[`c${c}`]!.rps;
    }
    curves.push({
      title: 'Ledger transfers/s vs callers',
      xLabel: 'concurrent callers',
      yLabel: 'transfers/s',
      points: s.callers.map((c) => ({ x: c, y: byCallers[`c${c}`]!.rps })),
    });
    progress(`  ${s.callers.map((c) => `${c}: ${byCallers[`c${c}`]!.rps.toFixed(0)}/s`).join(', ')}`);
    await assertVerified(ldb.db, 'scale ledger');
  } finally {
    await ldb.close();
  }

  progress(`scale 4/5: alert latency vs subscribers ${s.subscribers.join(', ')}; heap per idle subscription`);
  const token = await signToken(d.jwtSecret, 'usr_alice', 'payments');
  const p99s: { x: number; y: number }[] = [];
  let lost = 0;
  for (const n of s.subscribers) {
    collect();
    const before = process.memoryUsage().heapUsed;
    let perSubscription = Number.NaN;
    const r = await alertRun(stack, token, n, s.alertSamples, () => {
      collect();
      perSubscription = (process.memoryUsage().heapUsed - before) / n;
    });
    const st = summarize(r.latencies);
    legs[`alerts_${n}_subscribers`] = { ...st, lost: r.lost, unflagged: r.unflagged, heapBytesPerIdleSubscription: Math.round(perSubscription) };
    ratios[`alert_p99_ms_${n}_subscribers_scale`] = st.p99;
    lost += r.lost;
    p99s.push({ x: n, y: st.p99 });
    progress(`  ${n} subscribers: p50 ${st.p50} ms, p99 ${st.p99} ms, lost ${r.lost}; heap ${(perSubscription / 1024).toFixed(1)} KiB per idle subscription`);
    if (n === s.subscribers[s.subscribers.length - 1]) {
      ratios.alert_p99_ms_1000_subscribers = st.p99;
      ratios.gateway_heap_kib_per_idle_subscription = perSubscription / 1024;
    }
  }
  ratios.alerts_lost_scale = lost;
  curves.push({ title: 'Alert p99 vs subscribers', xLabel: 'subscribers', yLabel: 'p99 ms', points: p99s });
  curves.push({
    title: 'Heap per idle subscription (KiB)',
    xLabel: 'subscribers',
    yLabel: 'KiB each',
    // One subscription's heap delta is within the collector's noise: from the second count on.
    points: s.subscribers.slice(1).map((n) => ({
      x: n,
      y: ((legs[`alerts_${n}_subscribers`] as { heapBytesPerIdleSubscription: number }).heapBytesPerIdleSubscription ?? 0) / 1024,
    })),
  });
  await proofCurve(s, d, ratios, legs, curves);
  return { ratios, legs, curves };
}

/** GET on the gateway's origin, JSON back (the audit endpoints take no token). */
async function getJson<T>(stack: Stack, path: string): Promise<T> {
  const res = await httpRequest(new URL(path, stack.url), { method: 'GET', timeoutMs: 30_000 });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
  return JSON.parse(res.body.toString('utf8')) as T;
}

interface InclusionAnswer {
  index: number;
  treeSize: number;
  leafHash: string;
  hashes: string[];
}

/**
 * The gateway serves the seeded log: a proof from /audit/proof/inclusion verifies against the
 * stored root, and its leaf hash is that of the leaf /audit/entries serves.
 */
async function checkServed(stack: Stack, size: number, root: string): Promise<void> {
  const index = Math.floor(Math.random() * size);
  const p = await getJson<InclusionAnswer>(stack, `/audit/proof/inclusion?index=${index}&size=${size}`);
  const { entries } = await getJson<{ entries: { index: number; leaf: string }[] }>(stack, `/audit/entries?start=${index}&end=${index + 1}`);
  const leaf = leafHash(leafBytes(entries[0]?.leaf ?? ''));
  const h = (b: string) => new Uint8Array(Buffer.from(b, 'base64'));
  if (!equalHashes(leaf, h(p.leafHash)) || !verifyInclusion(index, size, leaf, p.hashes.map(h), h(root)))
    throw new Error(`the gateway's inclusion proof of leaf ${index} in the seeded log of ${size} does not verify`);
}

/** Inclusion proof p50 vs audit log size (see the header). */
export async function proofCurve(
  s: ScaleSettings,
  d: ScaleDeps,
  ratios: Record<string, number>,
  legs: Record<string, unknown>,
  curves: Curve[],
): Promise<void> {
  const { progress } = d;
  const [smallest, ...larger] = s.proofSizes;
  if (smallest === undefined || larger.length === 0) throw new Error('the proof curve needs at least two log sizes');
  progress(`scale 5/5: inclusion proof vs audit log size ${s.proofSizes.join(', ')} (through the gateway, random indexes at the full size)`);
  // One stack per size, every log seeded before any proof is timed: no keep-alive connection of a
  // timed loop then sits idle through a long seed (that ended a run with an unhandled ECONNRESET).
  const stacks: Stack[] = [];
  try {
    const seeded = [];
    for (const target of s.proofSizes) {
      const stack = await d.startStack();
      stacks.push(stack);
      const log = await seedAuditLog(stack.dbs.accounts, target, progress);
      await checkServed(stack, log.size, log.root);
      legs[`proof_seed_${target}`] = log;
      seeded.push(log);
      progress(
        `  seeded a log of ${log.size.toLocaleString('en-US')} records (${log.added.toLocaleString('en-US')} added) in ${log.seconds.toFixed(1)} s, ${log.recordsPerSecond.toFixed(0)} records/s; a proof served by the gateway verifies against the stored root`,
      );
    }
    const proofs = (stack: Stack, size: number) => async () =>
      void (await getJson<InclusionAnswer>(stack, `/audit/proof/inclusion?index=${Math.floor(Math.random() * size)}&size=${size}`));
    const small = { stack: stacks[0]!, size: seeded[0]!.size };
    const points: { x: number; y: number }[] = [];
    const smallP50s: number[] = [];
    for (let k = 1; k < s.proofSizes.length; k++) {
      const target = s.proofSizes[k]!;
      const size = seeded[k]!.size;
      const [big, base] = await d.sideBySide(proofs(stacks[k]!, size), proofs(small.stack, small.size));
      legs[`proof_${target}`] = big;
      legs[`proof_${smallest}_beside_${target}`] = base;
      points.push({ x: size, y: big.p50 });
      smallP50s.push(base.p50);
      ratios[`proof_p50_${target}_over_${smallest}`] = big.p50 / base.p50;
      progress(
        `  proof p50 ${big.p50.toFixed(2)} ms at ${size} records, ${base.p50.toFixed(2)} ms at ${small.size} beside it -> ratio ${(big.p50 / base.p50).toFixed(2)}`,
      );
    }
    // The key: the largest size over the smallest (1,000,000 / 1,000 on full settings), from their own side-by-side run.
    ratios.proof_p50_1m_over_1k = ratios[`proof_p50_${larger[larger.length - 1]!}_over_${smallest}`]!;
    smallP50s.sort((a, b) => a - b);
    curves.push({
      title: 'Inclusion proof p50 vs log size',
      xLabel: 'audit log records',
      yLabel: 'p50 ms',
      // The smallest log's point: the median of its p50s beside each larger one.
      points: [{ x: small.size, y: smallP50s[Math.floor(smallP50s.length / 2)]! }, ...points],
    });
  } finally {
    for (const stack of stacks) await stack.stop();
  }
}

export function writeChart(png: Buffer): void {
  fs.writeFileSync(new URL('./results.png', import.meta.url), png);
}
