/**
 * The audit under hostile input (docs/audit.md "Robustness"):
 * - poisoning: anonymous requests with operation names over 200 characters are refused AND
 *   recorded (truncated, marked), and never make another caller's operation fail with
 *   AUDIT_UNAVAILABLE (one bad record never fails the group-committed batch that carries it);
 * - flood: an unauthenticated client's repeated identical refused attempts become one record and
 *   one count per window, and past its budget of distinct attempts it is answered RATE_LIMITED
 *   before the audit, its attempts counted into one record;
 * - the final decision: a mutation the rate limit refuses after the fence allowed it is recorded
 *   REFUSED with reason RATE_LIMITED, not ALLOWED; the declared client name is kept as declared.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { inOneWindow } from '../helpers/clock.js';
import { op } from '../helpers/contract.js';
import { newKey } from '../helpers/money.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { readUntil } from '../helpers/wait.js';

let stack: TestStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const SEND = op('SendMoney');
const BALANCES = op('MyBalances');
const transfer = () => ({
  input: { fromAccountId: 'acc_alice_checking', toHandle: 'bob', amount: { amount: '0.01', currency: 'USD' }, idempotencyKey: newKey() },
});
const codes = (r: { errors?: { extensions?: Record<string, unknown> }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

interface Row {
  decision: string;
  count: number;
  marks: string;
  leaf: string;
  operation_name: string | null;
}
const rows = async (s: TestStack, where: (q: ReturnType<TestStack['dbs']['accounts']>) => unknown) => {
  const q = s.dbs.accounts('data_access_log').select('decision', 'count', 'marks', 'leaf', 'operation_name').orderBy('leaf_index');
  where(q);
  return (await q) as Row[];
};

describe('audit robustness', () => {
  it('8 clients with over-long operation names never make MyBalances or sendTransfer fail with AUDIT_UNAVAILABLE', async () => {
    // Every poisoned attempt reaches the audit (no coalescing, no budget): the batch path is what is under test.
    const s = (stack = await startTestStack({ refusals: { perWindow: 1_000_000 } }));
    const alice = await s.token('alice');
    const poison = (client: number, i: number) => {
      const name = `P${client}x${i}${'o'.repeat(250)}`;
      return s.gql(`query ${name} { me { accounts { id mask } } }`);
    };
    const legit = [...Array.from({ length: 40 }, () => s.gql(BALANCES, {}, alice)), ...Array.from({ length: 10 }, () => s.gql(SEND, transfer(), alice))];
    const poisoned = Array.from({ length: 8 }, (_, c) => Array.from({ length: 10 }, (_, i) => poison(c, i))).flat();
    const [good, bad] = await Promise.all([Promise.all(legit), Promise.all(poisoned)]);
    for (const r of good) {
      expect(codes(r), r.text.slice(0, 300)).not.toContain('AUDIT_UNAVAILABLE');
      expect(r.status).toBe(200);
      expect(r.errors).toBeUndefined();
    }
    // Anonymous: validated against the contract schema, where `accounts` does not exist.
    for (const r of bad) expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    // Every poisoned attempt is in the log, its name truncated to 200 and marked.
    const logged = await rows(s, (q) => void (q as { where: (c: string, o: string, v: string) => unknown }).where('operation_name', 'like', 'P%ooo'));
    expect(logged).toHaveLength(80);
    for (const r of logged) {
      expect(r.operation_name).toHaveLength(200);
      expect(r.decision).toBe('REFUSED');
      expect(JSON.parse(r.marks)).toEqual(['operationName:truncated']);
    }
  });

  it('coalesces one client’s repeated refused attempts and rate-limits it past its budget, losing no count', async () => {
    const s = (stack = await startTestStack({ refusals: { perWindow: 3, windowMs: 4_000 } }));
    const same = '{ me { accounts { id mask } } }';
    // Windows are aligned to the clock: all of it in one, whatever the time.
    const distinct = await inOneWindow(async () => {
      const flood = await Promise.all(Array.from({ length: 50 }, () => s.gql(same)));
      for (const r of flood) expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      // Distinct attempts: the first two more kinds are recorded, the rest refused before the audit.
      const probes = [];
      for (let i = 0; i < 6; i++) probes.push(await s.gql(`query Probe${i} { me { accounts { id } } }`));
      return probes;
    });
    expect(distinct.map((r) => codes(r)[0])).toEqual([
      'GRAPHQL_VALIDATION_FAILED',
      'GRAPHQL_VALIDATION_FAILED',
      'RATE_LIMITED',
      'RATE_LIMITED',
      'RATE_LIMITED',
      'RATE_LIMITED',
    ]);
    expect(distinct[2]!.status).toBe(429);
    // When the window closes: one record with the repeats' count, one with the limited attempts'.
    const anonymous = await readUntil(
      () => rows(s, (q) => void (q as { whereNull: (c: string) => unknown }).whereNull('user_id')),
      (r) => r.length >= 5,
      'the window’s count records',
    );
    const summary = anonymous.map((r) => {
      const leaf = JSON.parse(r.leaf) as { count: number; reason: string | null; operationName: string | null };
      return [leaf.operationName, leaf.count, leaf.reason];
    });
    expect(summary).toEqual(
      expect.arrayContaining([
        [null, 1, 'GRAPHQL_VALIDATION_FAILED'],
        [null, 49, 'GRAPHQL_VALIDATION_FAILED'],
        ['Probe0', 1, 'GRAPHQL_VALIDATION_FAILED'],
        ['Probe1', 1, 'GRAPHQL_VALIDATION_FAILED'],
        [null, 4, 'RATE_LIMITED'],
      ]),
    );
    expect(summary).toHaveLength(5);
    // Every attempt accounted for.
    expect(anonymous.reduce((n, r) => n + Number(r.count), 0)).toBe(56);
    // A signed-in caller is not bounded by the anonymous budget.
    const alice = await s.token('alice');
    for (let i = 0; i < 5; i++) expect((await s.gql(`query Mine${i} { me { accounts { id } } }`, {}, alice)).status).toBe(200);
  });

  it('records a mutation refused by the rate limit after the fence as REFUSED (RATE_LIMITED), keeping the declared client', async () => {
    const s = (stack = await startTestStack({ limits: { mutationsPerWindow: 2, mutationWindowMs: 60_000 } }));
    const alice = await s.token('alice');
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await s.gql(SEND, transfer(), alice, { 'apollographql-client-name': 'declared-app', 'x-request-id': `req-${i}` }));
    expect(results.map((r) => codes(r)[0] ?? null)).toEqual([null, null, 'RATE_LIMITED']);
    const logged = (await s.dbs
      .accounts('data_access_log')
      .where({ operation_name: 'SendMoney' })
      .orderBy('leaf_index')
      .select('decision', 'leaf', 'client', 'request_id')) as {
      decision: string;
      leaf: string;
      client: string;
      request_id: string;
    }[];
    expect(logged.map((r) => [r.decision, (JSON.parse(r.leaf) as { reason: string | null }).reason, r.client])).toEqual([
      ['ALLOWED', null, 'declared-app'],
      ['ALLOWED', null, 'declared-app'],
      ['REFUSED', 'RATE_LIMITED', 'declared-app'],
    ]);
  });

  it('records a subscription sent over HTTP (refused after the fence allowed it) as REFUSED, not ALLOWED', async () => {
    const s = (stack = await startTestStack());
    const res = await s.gql('subscription OverHttp { chargeAlertRaised { id } }', {}, await s.token('alice'));
    expect(codes(res)).toEqual(['BAD_REQUEST']);
    const logged = (await s.dbs.accounts('data_access_log').where({ operation_name: 'OverHttp' }).select('decision', 'leaf')) as {
      decision: string;
      leaf: string;
    }[];
    expect(logged.map((r) => [r.decision, (JSON.parse(r.leaf) as { reason: string }).reason])).toEqual([['REFUSED', 'BAD_REQUEST']]);
  });
});
