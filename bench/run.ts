/**
 * npm run bench [-- --quick]: measures paygraph side by side in one run and prints ratios (these
 * machines are shared and noisy: absolute numbers drift, ratios measured together hold).
 *
 * Legs (every HTTP leg: warm-up, then a fixed duration; p50/p95/p99 and requests per second):
 *   gateway vs direct     MyBalances + History(first: 20) through the gateway, and the same data
 *                         fetched straight from the subgraphs (signed, the same fetches the query
 *                         plan makes), interleaved in rounds so drift hits both alike
 *   fence on vs off       the same operation through two gateways over the same subgraphs, one
 *                         built without the data-use fence (benchmarkWithoutFence)
 *   SQL statements        one operation over a user with 50 accounts vs one with 5
 *   transfers             sustained transfers per second through the gateway (autocannon), and
 *                         straight into the ledger module in process; then the total balance and
 *                         ledger:verify are checked
 *   alerts                purchase commit -> graphql-ws subscriber receipt through the gateway,
 *                         with 1 and with 100 subscribers
 *
 * Writes bench/results.json (the ratio keys as numbers, plus every raw leg) and bench/results.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import type { Knex } from 'knex';
import { signToken } from '../lib/auth.js';
import { signRequest, REQUEST_ID_HEADER } from '../lib/signing.js';
import { deriveSubgraphKey } from '../lib/signing.js';
import { startStack, type Stack } from '../lib/stack.js';
import { startGateway } from '../gateway/index.js';
import { createLogger } from '../lib/log.js';
import { sendTransfer } from '../subgraphs/payments/movements.js';
import { verifyLedger } from '../subgraphs/payments/verify.js';
import { measureAlertLatency } from './alerts.js';

const JWT = 'bench-jwt-secret-0123456789abcdef';
const GW = 'bench-gateway-secret-0123456789abcdef';
const args = process.argv.slice(2);
export const QUICK = args.includes('--quick') || args.includes('--tiny');
const TINY = args.includes('--tiny'); // for the harness self-test: seconds, not minutes
const SECONDS = TINY ? 1 : QUICK ? 4 : 10;
const WARMUP = TINY ? 0.5 : QUICK ? 1 : 3;
const CONNECTIONS = 8;
const started = Date.now();

export function progress(message: string): void {
  console.log(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
}

export interface LegStats {
  p50: number;
  p95: number;
  p99: number;
  rps: number;
  requests: number;
  errors: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function stats(latencies: number[], seconds: number, errors: number): LegStats {
  const s = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), rps: latencies.length / seconds, requests: latencies.length, errors };
}

/** A closed loop of `concurrency` workers calling `fn` for `seconds`; latencies in ms (hrtime). */
async function loop(fn: () => Promise<void>, seconds: number, concurrency = CONNECTIONS): Promise<{ latencies: number[]; errors: number }> {
  const end = Date.now() + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t = process.hrtime.bigint();
        try {
          await fn();
          latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return { latencies, errors };
}

/** Runs `a` and `b` alternately in `rounds` rounds (so drift hits both), returning both legs. */
async function sideBySide(a: () => Promise<void>, b: () => Promise<void>, seconds: number, rounds = 4): Promise<[LegStats, LegStats]> {
  await loop(a, WARMUP);
  await loop(b, WARMUP);
  const la: number[] = [];
  const lb: number[] = [];
  let ea = 0;
  let eb = 0;
  for (let r = 0; r < rounds; r++) {
    const x = await loop(a, seconds / rounds);
    const y = await loop(b, seconds / rounds);
    la.push(...x.latencies);
    lb.push(...y.latencies);
    ea += x.errors;
    eb += y.errors;
  }
  return [stats(la, seconds, ea), stats(lb, seconds, eb)];
}

function autocannonRun(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function fromAutocannon(r: autocannon.Result): LegStats {
  return { p50: r.latency.p50, p95: r.latency.p97_5 ?? r.latency.p99, p99: r.latency.p99, rps: r.requests.average, requests: r.requests.total, errors: r.errors + r.non2xx };
}

const BALANCES_AND_HISTORY = `query BalancesAndHistory($accountId: ID!) {
  me { id name handle accounts { id kind displayName mask currency institution { id name kind }
    balance { available { amount currency } current { amount currency } asOf } } }
  account(id: $accountId) { id transactions(first: 20) { totalCount
    edges { cursor node { id kind direction status amount { amount currency } description postedAt
      merchant { id name category country } counterparty { id handle name } } }
    pageInfo { hasNextPage endCursor } } }
}`;

async function post(url: string, body: string, headers: Record<string, string>): Promise<{ data?: unknown; errors?: unknown[] }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const json = (await res.json()) as { data?: unknown; errors?: unknown[] };
  if (!res.ok || json.errors) throw new Error(`request failed: ${res.status} ${JSON.stringify(json.errors).slice(0, 200)}`);
  return json;
}

/** The same data as BALANCES_AND_HISTORY, fetched straight from the subgraphs the way the plan does. */
function directFetcher(stack: Stack, userId: string, accountId: string): () => Promise<void> {
  const caller = { userId, purpose: 'payments' as const, client: 'bench' };
  const signed = async (name: 'accounts' | 'payments' | 'merchants', query: string, variables: Record<string, unknown>) => {
    const body = JSON.stringify({ query, variables });
    return post(stack.subgraphs[name].url, body, { ...signRequest(deriveSubgraphKey(GW, name), caller, body), [REQUEST_ID_HEADER]: 'bench-direct' }) as Promise<{ data: Record<string, unknown> }>;
  };
  return async () => {
    const a = await signed('accounts', 'query($id: ID!) { me { id name handle accounts { id kind displayName mask currency institution { id name kind } } } account(id: $id) { id } }', { id: accountId });
    const me = a.data.me as { accounts: { id: string }[] };
    const reps = [...me.accounts.map((x) => ({ __typename: 'Account', id: x.id })), { __typename: 'Account', id: accountId }];
    const p = await signed(
      'payments',
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Account { balance { available { amount currency } current { amount currency } asOf }
        transactions(first: 20) { totalCount edges { cursor node { id kind direction status amount { amount currency } description postedAt merchant { id } counterparty { id } } } pageInfo { hasNextPage endCursor } } } } }`,
      { r: reps },
    );
    const entities = p.data._entities as { transactions: { edges: { node: { merchant: { id: string } | null; counterparty: { id: string } | null } }[] } }[];
    const nodes = entities.flatMap((e) => e.transactions.edges.map((x) => x.node));
    const merchants = [...new Set(nodes.flatMap((n) => (n.merchant ? [n.merchant.id] : [])))].map((id) => ({ __typename: 'Merchant', id }));
    const users = [...new Set(nodes.flatMap((n) => (n.counterparty ? [n.counterparty.id] : [])))].map((id) => ({ __typename: 'User', id }));
    await Promise.all([
      merchants.length ? signed('merchants', 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Merchant { name category country } } }', { r: merchants }) : null,
      users.length ? signed('accounts', 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { handle name } } }', { r: users }) : null,
    ]);
  };
}

async function addUserWithAccounts(accounts: Knex, payments: Knex, handle: string, n: number): Promise<void> {
  const userId = `usr_${handle}`;
  await accounts('users').insert({ id: userId, handle, name: `Bench ${handle}`, country: 'US' });
  await payments('parties').insert({ user_id: userId, handle, country: 'US' });
  for (let i = 0; i < n; i++) {
    const id = `acc_${handle}_${i}`;
    await accounts('accounts').insert({ id, user_id: userId, institution_id: 'ins_chase', kind: 'CHECKING', display_name: `Account ${i}`, mask: String(1000 + i), currency: 'USD' });
    await payments('ledger_accounts').insert({ id, owner_user_id: userId, kind: 'CHECKING', currency: 'USD', balance_minor: 0, frozen: false });
  }
}

async function totalBalance(db: Knex): Promise<bigint> {
  const rows = (await db('ledger_accounts').select('balance_minor')) as { balance_minor: unknown }[];
  return rows.reduce((s, r) => s + BigInt(String(r.balance_minor)), 0n);
}

export interface BenchResults {
  machine: Record<string, unknown>;
  ratios: Record<string, number>;
  legs: Record<string, unknown>;
}

export async function runBench(): Promise<BenchResults> {
  progress(`mode: ${TINY ? 'tiny' : QUICK ? 'quick' : 'full'} (${SECONDS} s per leg, ${WARMUP} s warm-up, ${CONNECTIONS} connections)`);
  const stack = await startStack({ dataDir: ':memory:', port: 0, jwtSecret: JWT, gatewaySecret: GW, logLevel: 'silent', limits: { mutationsPerWindow: 1e9 } });
  const legs: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};
  try {
    const alice = await signToken(JWT, 'usr_alice', 'payments');
    const body = JSON.stringify({ query: BALANCES_AND_HISTORY, variables: { accountId: 'acc_alice_checking' } });
    const auth = { authorization: `Bearer ${alice}` };

    // 1. gateway vs direct
    progress('leg 1/5: gateway vs direct subgraph fetches (MyBalances + History(first: 20))');
    const viaGateway = async () => void (await post(stack.url, body, auth));
    const [gw, direct] = await sideBySide(viaGateway, directFetcher(stack, 'usr_alice', 'acc_alice_checking'), SECONDS);
    legs.gateway = gw;
    legs.direct = direct;
    ratios.gateway_overhead_p50 = gw.p50 / direct.p50;
    progress(`  gateway p50 ${gw.p50.toFixed(2)} ms, direct p50 ${direct.p50.toFixed(2)} ms -> ratio ${ratios.gateway_overhead_p50.toFixed(2)}`);
    const ac = await autocannonRun({ url: stack.url, method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body, connections: CONNECTIONS, duration: SECONDS });
    legs.gateway_autocannon = fromAutocannon(ac);
    progress(`  autocannon through the gateway: ${ac.requests.average.toFixed(0)} req/s, p50 ${ac.latency.p50} ms, p99 ${ac.latency.p99} ms, ${ac.errors + ac.non2xx} errors`);

    // 2. fence on vs off
    progress('leg 2/5: fence on vs off (two gateways over the same subgraphs)');
    const subgraphUrls = Object.fromEntries(Object.entries(stack.subgraphs).map(([n, s]) => [n, s.url])) as Parameters<typeof startGateway>[0]['subgraphUrls'];
    const fenceless = await startGateway({ supergraphSdl: fs.readFileSync(new URL('../schema/supergraph.graphql', import.meta.url), 'utf8'), subgraphUrls, gatewaySecret: GW, jwtSecret: JWT, production: false, benchmarkWithoutFence: true, logger: createLogger('gateway', { level: 'silent' }), limits: { mutationsPerWindow: 1e9 } });
    try {
      const [on, off] = await sideBySide(viaGateway, async () => void (await post(fenceless.url, body, auth)), SECONDS);
      legs.fence_on = on;
      legs.fence_off = off;
      ratios.fence_overhead_p50 = on.p50 / off.p50;
      progress(`  fence on p50 ${on.p50.toFixed(2)} ms, off ${off.p50.toFixed(2)} ms -> ratio ${ratios.fence_overhead_p50.toFixed(3)}`);
    } finally {
      await fenceless.stop();
    }

    // 3. SQL statements, 50 accounts over 5
    progress('leg 3/5: SQL statements for one operation over 50 vs 5 accounts');
    await addUserWithAccounts(stack.dbs.accounts, stack.dbs.payments, 'bench5', 5);
    await addUserWithAccounts(stack.dbs.accounts, stack.dbs.payments, 'bench50', 50);
    const count = async (handle: string) => {
      let n = 0;
      const on = (q: { sql: string }) => {
        if (!/data_access_log|outbox_events|freeze_commands|alert/i.test(q.sql)) n += 1;
      };
      const dbs = [stack.dbs.accounts, stack.dbs.payments, stack.dbs.merchants];
      dbs.forEach((d) => d.on('query', on));
      const token = await signToken(JWT, `usr_${handle}`, 'payments');
      await post(stack.url, JSON.stringify({ query: '{ me { accounts { id mask institution { name } balance { current { amount } } transactions(first: 5) { totalCount edges { node { id merchant { name } counterparty { handle } } } } } } }' }), { authorization: `Bearer ${token}` });
      dbs.forEach((d) => d.off('query', on));
      return n;
    };
    const n5 = await count('bench5');
    const n50 = await count('bench50');
    legs.sql_statements = { n5, n50 };
    ratios.sql_statements_n50_over_n5 = n50 / n5;
    progress(`  ${n5} statements for 5 accounts, ${n50} for 50 -> ratio ${ratios.sql_statements_n50_over_n5}`);

    // 4. transfers
    progress('leg 4/5: sustained transfers, through the gateway and straight into the ledger');
    const totalBefore = await totalBalance(stack.dbs.payments);
    const senders = ['alice', 'bob', 'carol', 'dave'];
    const tokens = await Promise.all(senders.map((h) => signToken(JWT, `usr_${h}`, 'payments')));
    let seq = 0;
    const mutation = 'mutation Send($input: SendTransferInput!) { sendTransfer(input: $input) { transfer { id } userErrors { code } } }';
    const transferBody = (i: number) => {
      const from = senders[i % 4]!;
      const to = senders[(i + 1) % 4]!;
      return JSON.stringify({ query: mutation, variables: { input: { fromAccountId: `acc_${from}_checking`, toHandle: to, amount: { amount: '0.01', currency: 'USD' }, idempotencyKey: `bench-gw-${process.pid}-${i}` } } });
    };
    let transferErrors = 0;
    const tr = await autocannonRun({
      url: stack.url,
      method: 'POST',
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          setupRequest: (req: autocannon.Request) => {
            const i = seq++;
            return { ...req, body: transferBody(i), headers: { ...req.headers, 'content-type': 'application/json', authorization: `Bearer ${tokens[i % 4]}` } };
          },
          onResponse: (status: number, resBody: string) => {
            if (status !== 200 || !resBody.includes('"userErrors":[]')) transferErrors += 1;
          },
        },
      ],
    });
    legs.transfers_gateway = { ...fromAutocannon(tr), businessErrors: transferErrors };
    ratios.transfers_per_sec_gateway = tr.requests.average;
    progress(`  gateway: ${tr.requests.average.toFixed(0)} transfers/s (p50 ${tr.latency.p50} ms, p99 ${tr.latency.p99} ms, ${transferErrors} failed)`);

    let inProcess = 0;
    const ledgerLoop = await loop(async () => {
      const i = inProcess++;
      const from = senders[i % 4]!;
      const r = await sendTransfer(stack.dbs.payments, `usr_${from}`, { fromAccountId: `acc_${from}_checking`, toHandle: senders[(i + 1) % 4]!, amount: { amount: '0.01', currency: 'USD' }, idempotencyKey: `bench-ledger-${process.pid}-${i}` });
      if (r.userErrors.length) throw new Error(r.userErrors[0]!.code);
    }, SECONDS);
    const ledgerStats = stats(ledgerLoop.latencies, SECONDS, ledgerLoop.errors);
    legs.transfers_ledger = ledgerStats;
    ratios.transfers_per_sec_ledger = ledgerStats.rps;
    ratios.transfers_gateway_over_ledger = ratios.transfers_per_sec_gateway / ratios.transfers_per_sec_ledger;
    progress(`  ledger in process: ${ledgerStats.rps.toFixed(0)} transfers/s -> gateway/ledger ${ratios.transfers_gateway_over_ledger.toFixed(2)}`);
    const totalAfter = await totalBalance(stack.dbs.payments);
    const verification = await verifyLedger(stack.dbs.payments);
    legs.ledger_after = { totalBefore: totalBefore.toString(), totalAfter: totalAfter.toString(), verified: verification.ok };
    progress(`  total balance before ${totalBefore}, after ${totalAfter}; ledger:verify ${verification.ok ? 'passed' : 'FAILED'}`);
    if (totalBefore !== totalAfter || !verification.ok) throw new Error('the ledger does not verify after the transfer legs');

    // 5. alerts
    progress('leg 5/5: alert latency, purchase commit -> subscriber, 1 and 100 subscribers');
    const alerts = await measureAlertLatency(stack, JWT, { samples: TINY ? 5 : QUICK ? 20 : 60, progress });
    legs.alerts = alerts;
    ratios.alert_p99_ms_1_subscriber = alerts.one.p99;
    ratios.alert_p99_ms_100_subscribers = alerts.hundred.p99;
    ratios.alert_p99_100_over_1 = alerts.hundred.p99 / alerts.one.p99;
    ratios.alerts_lost = alerts.lost;
  } finally {
    await stack.stop();
  }
  return { machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, mode: TINY ? 'tiny' : QUICK ? 'quick' : 'full', seconds: SECONDS }, ratios, legs };
}

const TARGETS: Record<string, [string, (v: number) => boolean]> = {
  gateway_overhead_p50: ['<= 1.5', (v) => v <= 1.5],
  fence_overhead_p50: ['<= 1.05', (v) => v <= 1.05],
  sql_statements_n50_over_n5: ['= 1.0', (v) => v === 1],
  transfers_per_sec_gateway: ['>= 300', (v) => v >= 300],
  transfers_per_sec_ledger: ['(reference)', () => true],
  transfers_gateway_over_ledger: ['>= 0.2', (v) => v >= 0.2],
  alert_p99_ms_1_subscriber: ['(reference)', () => true],
  alert_p99_ms_100_subscribers: ['<= 100', (v) => v <= 100],
  alert_p99_100_over_1: ['<= 3', (v) => v <= 3],
  alerts_lost: ['= 0', (v) => v === 0],
};

export function table(results: BenchResults): string {
  const rows = Object.entries(TARGETS).map(([key, [target, ok]]) => {
    const v = results.ratios[key];
    const shown = v === undefined ? 'n/a' : Number.isInteger(v) ? String(v) : v.toFixed(3);
    return `| ${key} | ${shown} | ${target} | ${v === undefined ? '-' : ok(v) ? 'met' : 'MISSED'} |`;
  });
  return ['| metric | value | target | |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await runBench();
  const md = `# paygraph benchmark\n\n${new Date().toISOString()} on ${results.machine.cpus} x ${String(results.machine.cpu)}, Node ${String(results.machine.node)}, mode ${String(results.machine.mode)}\n\n${table(results)}\n\nRaw legs:\n\n\`\`\`json\n${JSON.stringify(results.legs, null, 2)}\n\`\`\`\n`;
  fs.writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(new URL('./results.md', import.meta.url), md);
  console.log(`\n${table(results)}\n\nwrote bench/results.json and bench/results.md`);
  process.exit(0);
}
