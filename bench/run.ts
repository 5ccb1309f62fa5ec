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
 * Every client in the harness (the closed loops, the direct fetcher) uses the same keep-alive
 * node:http client as the gateway (lib/transport/http-client.ts httpRequest), so the client's own cost is the same
 * on both sides of each ratio and small next to the stack's.
 *
 * Modes: full (10 s legs), `--quick` (4 s legs, about 45 s in all), `--tiny` (sub-second legs,
 * for test/bench-harness.test.ts: checks the harness runs end to end, not the numbers).
 *
 * Writes bench/results.json (the ratio keys as numbers, plus every raw leg) and bench/results.md.
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { readSupergraph } from '../schema/supergraph.js';
import fs from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import type { Knex } from 'knex';
import { secretVerifier, signToken } from '../lib/auth.js';
import { say } from '../lib/cli.js';
import { generateKeyRing, serviceKeys, type Signer } from '../lib/transport/keys.js';
import { encodeCaller, REQUEST_ID_HEADER, signMessage } from '../lib/transport/signing.js';
import { httpRequest } from '../lib/transport/http-client.js';
import { startStack, type Stack } from '../runtime/stack.js';
import { startGateway } from '../gateway/index.js';
import { createLogger } from '../lib/log.js';
import { verifyLedger } from '../subgraphs/payments/verify.js';
import { measureAlertLatency } from './alerts.js';
import { startPeerGateway } from './peer.js';
import { drawCurves, type Curve } from './chart.js';
import { runScale, SCALE_FULL, SCALE_TINY, writeChart } from './scale.js';
import { assertVerified, ledgerLeg, paymentsDb, rawLeg } from './ledger.js';
import { alternate, loop, stats, type LegStats } from './measure.js';
import { DEFAULT_SQLITE_DRIVER } from '../lib/db.js';

export type { LegStats } from './measure.js';

const JWT = 'bench-jwt-secret-0123456789abcdef';
/** The services' key pairs: fresh for every run, never constants. */
const KEYS = generateKeyRing();

export interface BenchSettings {
  mode: 'full' | 'quick' | 'tiny';
  /** Measured seconds per leg (each side of a side-by-side leg gets this much). */
  seconds: number;
  warmup: number;
  connections: number;
  /** Alerts per subscriber count in the alert leg. */
  alertSamples: number;
  /** Concurrent callers of the in-process ledger legs. */
  ledgerCallers: number;
  /** `--scale`: the cost curves (bench/scale.ts) instead of the legs. */
  scale: boolean;
}

export function settingsFromArgs(args: readonly string[]): BenchSettings {
  const scale = args.includes('--scale');
  if (args.includes('--tiny')) return { mode: 'tiny', seconds: 0.6, warmup: 0.3, connections: 4, alertSamples: 3, ledgerCallers: 8, scale };
  if (args.includes('--quick')) return { mode: 'quick', seconds: 4, warmup: 1, connections: 8, alertSamples: 20, ledgerCallers: 64, scale };
  return { mode: 'full', seconds: 10, warmup: 3, connections: 8, alertSamples: 60, ledgerCallers: 64, scale };
}

let started = Date.now();
/** Progress lines go to stdout by default; the harness test silences them. */
let progressSink: (line: string) => void = say;

export function progress(message: string): void {
  progressSink(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
}

/** Runs `a` and `b` alternately in `rounds` rounds (so drift hits both), returning both legs. */
async function sideBySide(cfg: BenchSettings, a: () => Promise<void>, b: () => Promise<void>, rounds = 4): Promise<[LegStats, LegStats]> {
  const seconds = cfg.seconds;
  await loop(a, cfg.warmup, cfg.connections);
  await loop(b, cfg.warmup, cfg.connections);
  const la: number[] = [];
  const lb: number[] = [];
  let ea = 0;
  let eb = 0;
  for (let r = 0; r < rounds; r++) {
    // Alternate which side goes first, so neither always follows the other's garbage.
    const first = r % 2 === 0;
    const x = first ? await loop(a, seconds / rounds, cfg.connections) : null;
    const y = await loop(b, seconds / rounds, cfg.connections);
    const x2 = x ?? (await loop(a, seconds / rounds, cfg.connections));
    la.push(...x2.latencies);
    lb.push(...y.latencies);
    ea += x2.errors;
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
  return {
    p50: r.latency.p50,
    p95: r.latency.p97_5 ?? r.latency.p99,
    p99: r.latency.p99,
    rps: r.requests.average,
    requests: r.requests.total,
    errors: r.errors + r.non2xx,
  };
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
  const res = await httpRequest(url, { headers: { 'content-type': 'application/json', ...headers }, body, timeoutMs: 30_000 });
  const json = JSON.parse(res.body.toString('utf8')) as { data?: unknown; errors?: unknown[] };
  if (res.status !== 200 || json.errors) throw new Error(`request failed: ${res.status} ${JSON.stringify(json.errors).slice(0, 200)}`);
  return json;
}

/** The same data as BALANCES_AND_HISTORY, fetched straight from the subgraphs the way the plan does (signed as `gateway`, as it would). */
export function directFetcher(stack: Stack, gateway: Signer, userId: string, accountId: string): () => Promise<void> {
  const caller = encodeCaller({ userId, purpose: 'payments', client: 'bench' });
  const signed = async (name: 'accounts' | 'payments' | 'merchants', query: string, variables: Record<string, unknown>) => {
    const body = JSON.stringify({ query, variables });
    const url = stack.subgraphs[name].url;
    return post(url, body, {
      ...(await signMessage(gateway, { method: 'POST', path: new URL(url).pathname, target: name, caller, body })),
      [REQUEST_ID_HEADER]: 'bench-direct',
    }) as Promise<{ data: Record<string, unknown> }>;
  };
  return async () => {
    const a = await signed(
      'accounts',
      'query($id: ID!) { me { id name handle accounts { id kind displayName mask currency institution { id name kind } } } account(id: $id) { id } }',
      { id: accountId },
    );
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
      merchants.length
        ? signed('merchants', 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Merchant { name category country } } }', { r: merchants })
        : null,
      users.length ? signed('accounts', 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { handle name } } }', { r: users }) : null,
    ]);
  };
}

async function addUserWithAccounts(accounts: Knex, payments: Knex, handle: string, n: number): Promise<void> {
  const userId = `usr_${handle}`;
  await accounts('users').insert({ id: userId, handle, name: `Bench ${handle}`, country: 'US' });
  await payments('parties').insert({ user_id: userId, handle, country: 'US' });
  // The user's consent to the institution, as a grant stores it (subgraphs/accounts/consent/): the bench measures served data.
  await accounts('consents').insert({
    id: `cns_bench_${handle}`,
    user_id: userId,
    institution_id: 'ins_chase',
    scopes: JSON.stringify(['ACCOUNT_DETAILS', 'BALANCES', 'MONEY_MOVEMENT', 'TRANSACTIONS']),
    purpose: 'PAYMENTS',
    disclosure_version: 'bench',
    granted_at: new Date(Date.now() - 86_400_000).toISOString(),
    expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString(),
    idempotency_key: `bench-${handle}`,
    request_hash: '0'.repeat(64),
  });
  for (let i = 0; i < n; i++) {
    const id = `acc_${handle}_${i}`;
    await accounts('accounts').insert({
      id,
      user_id: userId,
      institution_id: 'ins_chase',
      kind: 'CHECKING',
      display_name: `Account ${i}`,
      mask: String(1000 + i),
      currency: 'USD',
    });
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
  /** --scale: the cost curves (also drawn to bench/results.png). */
  curves?: Curve[];
}

export async function runBench(cfg: BenchSettings = settingsFromArgs(process.argv.slice(2)), opts: { quiet?: boolean } = {}): Promise<BenchResults> {
  started = Date.now();
  progressSink = opts.quiet ? () => undefined : say;
  const SECONDS = cfg.seconds;
  // autocannon takes whole seconds.
  const acSeconds = Math.max(1, Math.round(cfg.seconds));
  progress(
    `mode: ${cfg.mode} (${SECONDS} s per leg, ${cfg.warmup} s warm-up, ${cfg.connections} connections; node ${process.version}, ${os.cpus().length} cpus)`,
  );
  const benchStack = () =>
    startStack({
      dataDir: ':memory:',
      port: 0,
      jwtSecret: JWT,
      keys: KEYS,
      logLevel: 'silent',
      limits: { mutationsPerWindow: 1e9 },
      // The alert leg fans one user's alerts out to 100 subscriptions: above the per-user limit (10).
      maxSubscriptionsPerUser: 1_000,
    });
  const stack = await benchStack();
  const legs: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};
  let curves: Curve[] | undefined;
  try {
    if (cfg.scale) {
      const scaled = await runScale(cfg.mode === 'tiny' ? SCALE_TINY : SCALE_FULL, {
        stack,
        jwtSecret: JWT,
        seconds: SECONDS,
        warmup: cfg.warmup,
        progress,
        sideBySide: (a, b) => sideBySide(cfg, a, b),
        post,
        startStack: benchStack,
      });
      Object.assign(ratios, scaled.ratios);
      Object.assign(legs, scaled.legs);
      curves = scaled.curves;
    } else {
      const alice = await signToken(JWT, 'usr_alice', 'payments');
      const body = JSON.stringify({ query: BALANCES_AND_HISTORY, variables: { accountId: 'acc_alice_checking' } });
      const auth = { authorization: `Bearer ${alice}` };

      // 1. gateway vs direct
      progress('leg 1/5: gateway vs direct subgraph fetches (MyBalances + History(first: 20))');
      const viaGateway = async () => void (await post(stack.url, body, auth));
      const [gw, direct] = await sideBySide(cfg, viaGateway, directFetcher(stack, serviceKeys(KEYS, 'gateway', []), 'usr_alice', 'acc_alice_checking'));
      legs.gateway = gw;
      legs.direct = direct;
      ratios.gateway_overhead_p50 = gw.p50 / direct.p50;
      progress(`  gateway p50 ${gw.p50.toFixed(2)} ms, direct p50 ${direct.p50.toFixed(2)} ms -> ratio ${ratios.gateway_overhead_p50.toFixed(2)}`);
      const ac = await autocannonRun({
        url: stack.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body,
        connections: cfg.connections,
        duration: acSeconds,
      });
      legs.gateway_autocannon = fromAutocannon(ac);
      progress(
        `  autocannon through the gateway: ${ac.requests.average.toFixed(0)} req/s, p50 ${ac.latency.p50} ms, p99 ${ac.latency.p99} ms, ${ac.errors + ac.non2xx} errors`,
      );

      // 2. fence on vs off
      progress('leg 2/5: fence on vs off (two gateways over the same subgraphs)');
      const subgraphUrls = Object.fromEntries(Object.entries(stack.subgraphs).map(([n, s]) => [n, s.url])) as Parameters<
        typeof startGateway
      >[0]['subgraphUrls'];
      const fenceless = await startGateway({
        supergraphSdl: readSupergraph(),
        subgraphUrls,
        keys: serviceKeys(KEYS, 'gateway', []),
        tokenVerifier: secretVerifier(JWT),
        production: false,
        benchmarkWithoutFence: true,
        logger: createLogger('gateway', { level: 'silent' }),
        limits: { mutationsPerWindow: 1e9 },
      });
      try {
        const [on, off] = await sideBySide(cfg, viaGateway, async () => void (await post(fenceless.url, body, auth)));
        legs.fence_on = on;
        legs.fence_off = off;
        ratios.fence_overhead_p50 = on.p50 / off.p50;
        progress(`  fence on p50 ${on.p50.toFixed(2)} ms, off ${off.p50.toFixed(2)} ms -> ratio ${ratios.fence_overhead_p50.toFixed(3)}`);
      } finally {
        await fenceless.stop();
      }

      // 2b. the peer: Hive Gateway over the same subgraphs, the same operation (bench/peer.ts)
      progress('leg 2b: paygraph gateway (fence on) vs Hive Gateway on the same subgraphs and operation');
      const peer = await startPeerGateway({ supergraphSdl: readSupergraph(), subgraphUrls, signer: serviceKeys(KEYS, 'gateway', []), jwtSecret: JWT });
      try {
        const viaPeer = async () => void (await post(peer.url, body, auth));
        // The same answer from both, before anything is timed
        const [a, b] = await Promise.all([post(stack.url, body, auth), post(peer.url, body, auth)]);
        // (asOf is the time of the read.)
        const same = (x: unknown) => JSON.stringify(x, (k, v: unknown) => (k === 'asOf' ? undefined : v));
        if (same(a.data) !== same(b.data)) throw new Error('the peer gateway answers the bench operation differently');
        const [mine, theirs] = await sideBySide(cfg, viaGateway, viaPeer);
        legs.peer_paygraph = mine;
        legs.peer_hive = theirs;
        ratios.gateway_over_peer_rps = mine.rps / theirs.rps;
        progress(
          `  paygraph ${mine.rps.toFixed(0)} req/s (p50 ${mine.p50.toFixed(2)} ms), Hive Gateway ${theirs.rps.toFixed(0)} req/s (p50 ${theirs.p50.toFixed(2)} ms) -> ratio ${ratios.gateway_over_peer_rps.toFixed(2)}`,
        );
      } finally {
        await peer.stop();
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
        await post(
          stack.url,
          JSON.stringify({
            query:
              '{ me { accounts { id mask institution { name } balance { current { amount } } transactions(first: 5) { totalCount edges { node { id merchant { name } counterparty { handle } } } } } } }',
          }),
          { authorization: `Bearer ${token}` },
        );
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
        return JSON.stringify({
          query: mutation,
          variables: {
            input: {
              fromAccountId: `acc_${from}_checking`,
              toHandle: to,
              amount: { amount: '0.01', currency: 'USD' },
              idempotencyKey: `bench-gw-${process.pid}-${i}`,
            },
          },
        });
      };
      let transferErrors = 0;
      const tr = await autocannonRun({
        url: stack.url,
        method: 'POST',
        connections: cfg.connections,
        duration: acSeconds,
        requests: [
          {
            setupRequest: (req: autocannon.Request) => {
              const i = seq++;
              return {
                ...req,
                body: transferBody(i),
                headers: { ...req.headers, 'content-type': 'application/json', authorization: `Bearer ${tokens[i % 4]}` },
              };
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

      // In process: the movements module on a fresh payments database per driver, and the raw
      // better-sqlite3 loop of the same writes (bench/ledger.ts), alternated in rounds.
      progress(`  in process, ${cfg.ledgerCallers} concurrent callers: ledger on each SQLite driver, and raw better-sqlite3 prepared statements`);
      const ledgerDbs = { better: await paymentsDb('better-sqlite3'), sqlite3: await paymentsDb('sqlite3'), raw: await paymentsDb('better-sqlite3') };
      try {
        const inProcess = await alternate(
          {
            ledger_better_sqlite3: ledgerLeg(ledgerDbs.better.db, cfg.ledgerCallers, 'better'),
            ledger_sqlite3: ledgerLeg(ledgerDbs.sqlite3.db, cfg.ledgerCallers, 'sqlite3'),
            sqlite_raw: await rawLeg(ledgerDbs.raw.db, Math.min(cfg.ledgerCallers, 64)),
          },
          SECONDS,
          cfg.warmup,
        );
        for (const [name, leg] of Object.entries(inProcess)) legs[`transfers_${name}`] = leg;
        const byDriver = { 'better-sqlite3': inProcess.ledger_better_sqlite3!, sqlite3: inProcess.ledger_sqlite3! };
        ratios.transfers_per_sec_ledger = byDriver[DEFAULT_SQLITE_DRIVER].rps;
        ratios.transfers_per_sec_ledger_better_sqlite3 = byDriver['better-sqlite3'].rps;
        ratios.transfers_per_sec_ledger_sqlite3 = byDriver.sqlite3.rps;
        ratios.transfers_per_sec_sqlite_raw = inProcess.sqlite_raw!.rps;
        ratios.ledger_over_sqlite_limit = ratios.transfers_per_sec_ledger / ratios.transfers_per_sec_sqlite_raw;
        ratios.ledger_better_sqlite3_over_sqlite3 = byDriver['better-sqlite3'].rps / byDriver.sqlite3.rps;
        ratios.transfers_gateway_over_ledger = ratios.transfers_per_sec_gateway / ratios.transfers_per_sec_ledger;
        progress(
          `  ledger: ${byDriver['better-sqlite3'].rps.toFixed(0)}/s on better-sqlite3, ${byDriver.sqlite3.rps.toFixed(0)}/s on sqlite3; raw SQLite ${inProcess.sqlite_raw!.rps.toFixed(0)}/s -> ledger/raw ${ratios.ledger_over_sqlite_limit.toFixed(2)}`,
        );
        for (const [name, x] of Object.entries(ledgerDbs)) await assertVerified(x.db, name);
      } finally {
        for (const x of Object.values(ledgerDbs)) await x.close();
      }
      const totalAfter = await totalBalance(stack.dbs.payments);
      const verification = await verifyLedger(stack.dbs.payments);
      legs.ledger_after = { totalBefore: totalBefore.toString(), totalAfter: totalAfter.toString(), verified: verification.ok };
      progress(`  total balance before ${totalBefore}, after ${totalAfter}; ledger:verify ${verification.ok ? 'passed' : 'FAILED'}`);
      if (totalBefore !== totalAfter || !verification.ok) throw new Error('the ledger does not verify after the transfer legs');

      // 5. alerts
      progress('leg 5/5: alert latency, purchase commit -> subscriber, 1 and 100 subscribers');
      const alerts = await measureAlertLatency(stack, JWT, { samples: cfg.alertSamples, progress });
      legs.alerts = alerts;
      ratios.alert_p99_ms_1_subscriber = alerts.one.p99;
      ratios.alert_p99_ms_100_subscribers = alerts.hundred.p99;
      ratios.alert_p99_100_over_1 = alerts.hundred.p99 / alerts.one.p99;
      ratios.alerts_lost = alerts.lost;
    }
  } finally {
    await stack.stop();
  }
  return {
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      mode: cfg.mode,
      seconds: SECONDS,
      connections: cfg.connections,
    },
    ratios,
    legs,
    ...(curves ? { curves } : {}),
  };
}

/** Every key with its target (issue "Performance at the limits"); `(reference)` keys have none. */
const TARGETS: Record<string, [string, (v: number) => boolean]> = {
  gateway_overhead_p50: ['<= 1.2', (v) => v <= 1.2],
  fence_overhead_p50: ['<= 1.05', (v) => v <= 1.05],
  gateway_over_peer_rps: ['>= 1.0', (v) => v >= 1],
  sql_statements_n50_over_n5: ['= 1.0', (v) => v === 1],
  transfers_per_sec_gateway: ['>= 1000', (v) => v >= 1000],
  transfers_per_sec_ledger: ['>= 10000', (v) => v >= 10_000],
  transfers_per_sec_ledger_better_sqlite3: ['(reference)', () => true],
  transfers_per_sec_ledger_sqlite3: ['(reference)', () => true],
  transfers_per_sec_sqlite_raw: ['(reference)', () => true],
  ledger_over_sqlite_limit: ['>= 0.25', (v) => v >= 0.25],
  ledger_better_sqlite3_over_sqlite3: ['(reference)', () => true],
  transfers_gateway_over_ledger: ['(reference)', () => true],
  alert_p99_ms_1_subscriber: ['(reference)', () => true],
  alert_p99_ms_100_subscribers: ['<= 100', (v) => v <= 100],
  alert_p99_100_over_1: ['<= 3', (v) => v <= 3],
  alerts_lost: ['= 0', (v) => v === 0],
  alert_p99_ms_1000_subscribers: ['<= 100 (--scale)', (v) => v <= 100],
  history_p50_100k_over_100: ['<= 1.5 (--scale)', (v) => v <= 1.5],
  proof_p50_1m_over_1k: ['<= 2 (--scale)', (v) => v <= 2],
  proof_p50_10000_over_1000: ['(reference, --scale)', () => true],
  proof_p50_100000_over_1000: ['(reference, --scale)', () => true],
  transfers_per_sec_ledger_1_callers: ['(reference, --scale)', () => true],
  transfers_per_sec_ledger_8_callers: ['(reference, --scale)', () => true],
  transfers_per_sec_ledger_64_callers: ['(reference, --scale)', () => true],
  gateway_heap_kib_per_idle_subscription: ['(reference, --scale)', () => true],
  alerts_lost_scale: ['= 0 (--scale)', (v) => v === 0],
};

export function table(results: BenchResults): string {
  const rows = Object.entries(TARGETS).map(([key, [target, ok]]) => {
    const v = results.ratios[key];
    const shown = v === undefined ? 'n/a' : Number.isInteger(v) ? String(v) : v.toFixed(3);
    return `| ${key} | ${shown} | ${target} | ${v === undefined ? '-' : ok(v) ? 'met' : 'MISSED'} |`;
  });
  return ['| metric | value | target | |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The HTTP and loop legs, one row each (requests per second and latency percentiles, ms). */
export function legsTable(results: BenchResults): string {
  const n = (v: unknown, digits = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-');
  const row = (name: string, leg: unknown): string[] => {
    if (!leg || typeof leg !== 'object') return [];
    const l = leg as Partial<LegStats> & { samples?: number; lost?: number };
    // Nested legs (alerts: one, hundred) get a row each.
    if (typeof l.p50 !== 'number')
      return Object.entries(leg).flatMap(([k, v]) =>
        v && typeof v === 'object' && typeof (v as { p50?: unknown }).p50 === 'number' ? row(`${name}.${k}`, v) : [],
      );
    return [`| ${name} | ${n(l.rps, 0)} | ${n(l.p50)} | ${n(l.p95)} | ${n(l.p99)} | ${l.requests ?? l.samples ?? '-'} | ${l.errors ?? l.lost ?? '-'} |`];
  };
  const rows = Object.entries(results.legs).flatMap(([name, leg]) => row(name, leg));
  return ['| leg | req/s | p50 ms | p95 ms | p99 ms | requests | errors |', '| --- | --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}

export function markdown(results: BenchResults, command: string): string {
  const m = results.machine;
  return [
    '# paygraph benchmark',
    '',
    `${new Date().toISOString()}: \`${command}\` on ${String(m.cpus)} x ${String(m.cpu)}, ${String(m.memGiB)} GiB, Node ${String(m.node)}, mode ${String(m.mode)} (${String(m.seconds)} s per leg, ${String(m.connections)} connections). The whole stack runs in the benchmark's process.`,
    '',
    table(results),
    '',
    'Legs:',
    '',
    legsTable(results),
    '',
    'Raw legs:',
    '',
    '```json',
    JSON.stringify(results.legs, null, 2),
    '```',
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const results = await runBench(settingsFromArgs(args));
  const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
  // A --tiny run checks the harness, its numbers mean nothing: it does not replace the results.
  const tiny = results.machine.mode === 'tiny';
  // --scale writes beside the legs' results, not over them.
  const stem = results.curves ? 'results-scale' : 'results';
  if (!tiny) fs.writeFileSync(new URL(`./${stem}.json`, import.meta.url), `${JSON.stringify({ command, ...results }, null, 2)}\n`);
  if (!tiny) fs.writeFileSync(new URL(`./${stem}.md`, import.meta.url), markdown(results, command));
  if (!tiny && results.curves)
    writeChart(
      await drawCurves(results.curves, `${command}, ${new Date().toISOString()}, ${String(results.machine.cpus)} cpus, Node ${String(results.machine.node)}`),
    );
  const wrote = tiny
    ? 'tiny mode: bench/results.* left as they were'
    : `wrote bench/${stem}.json and bench/${stem}.md${results.curves ? ' and bench/results.png' : ''}`;
  say(`\n${table(results)}\n\n${legsTable(results)}\n\n${wrote} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  process.exit(0);
}
