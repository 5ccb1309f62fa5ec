/**
 * Fence layer 3: the query-plan check. A deliberately bad supergraph (composed with plain
 * composeServices, bypassing the layer-1 rules) lets the ads subgraph @requires Account.mask; the
 * gateway must abort any plan that would send it, log loudly, and never call the ads subgraph.
 */
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBGRAPH_NAMES } from '../../lib/config.js';
import { adsUserFetch, composeWithoutLint, subgraphsWithAds } from '../helpers/bad-supergraph.js';
import { checkFenceComposition } from '../../fence/compose-lint.js';
import { policyFromSupergraph } from '../../fence/operation-check.js';
import { SUBGRAPH_ZONES } from '../../fence/policy.js';
import { LogCapture } from '../helpers/logs.js';
import { expectData, expectNoLeak } from '../helpers/matchers.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { readUntil } from '../helpers/wait.js';
import { checkQueryPlan } from '../../fence/plan-check.js';

const BAD_ADS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires"])
  "The bad part: ads asks for the user's card numbers (last four digits) to score the user."
  type User @key(fields: "id") { id: ID! sponsoredOffers: [Offer!]! accounts: [Account!]! @external adScore: Int @requires(fields: "accounts { mask }") }
  type Offer { id: ID! headline: String! merchant: Merchant! }
  type Merchant @key(fields: "id", resolvable: false) { id: ID! }
  type Account @key(fields: "id") { id: ID! mask: String @external }
`);

function badSupergraph(): string {
  const defs = subgraphsWithAds(BAD_ADS);
  // Layer 1 would refuse it...
  expect(checkFenceComposition(SUBGRAPH_NAMES.map((name) => ({ name, zone: SUBGRAPH_ZONES[name], typeDefs: defs[name] }))).map((v) => v.rule)).toContain(
    'requires-protected-field',
  );
  // ...so compose it with plain composeServices, as an attacker (or a mistake) bypassing it would.
  return composeWithoutLint(BAD_ADS);
}

let stack: TestStack;
let supergraphSdl: string;
let adsRequests = 0;
const logs = new LogCapture();
const violations = () => logs.records().filter((r) => String(r.msg).includes('QUERY PLAN VIOLATION'));

beforeAll(async () => {
  supergraphSdl = badSupergraph();
  stack = await startTestStack({ supergraphSdl, logDestination: logs, logLevel: 'error' });
  stack.subgraphs.ads.server.on('request', () => {
    adsRequests += 1;
  });
});

afterAll(async () => {
  await stack?.stop();
});

describe('layer 3: the query-plan check', () => {
  it('aborts a plan whose fetch to ads carries Account.mask in its representations, logs it, and calls nothing in ads', async () => {
    const pay = await stack.token('alice', 'payments');
    const masks = expectData(await stack.gql<{ me: { accounts: { mask: string }[] } }>('{ me { accounts { mask } } }', undefined, pay)).me.accounts.map(
      (a) => a.mask,
    );
    expect(masks.length).toBeGreaterThan(0);
    {
      const before = violations().length;
      adsRequests = 0;
      // A payments caller passes layer 2 (it may read Account.mask itself), so only layer 3 stands here.
      const res = await stack.gql('query Score { me { accounts { id } adScore } }', undefined, pay);
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.length).toBeGreaterThan(0);
      expectNoLeak(res, masks);
      expect(adsRequests).toBe(0);
      expect(violations().length).toBe(before + 1);
      const detail = JSON.stringify(violations().at(-1)!.fence);
      expect(detail).toContain('Account.mask');
      expect(detail).toContain('"serviceName":"ads"');
      // Both decisions are in the log: layer 2 allowed the payments caller, layer 3 aborted.
      const rows = await readUntil(
        () => stack.dbs.accounts('data_access_log').where({ operation_name: 'Score' }).orderBy('id'),
        (r) => r.length >= 2,
        'both decisions in the data-access log',
      );
      expect(rows.map((r: { decision: string; layer: string }) => `${r.layer}:${r.decision}`)).toEqual(['gateway:ALLOWED', 'query-plan:REFUSED']);
      // The representations ads would have been sent: the user's accounts and their masks.
      expect(JSON.parse((rows[1] as { coordinates: string }).coordinates)).toEqual(expect.arrayContaining(['User.accounts', 'Account.mask']));
    }
  });

  it('a cached plan is checked again on the next request', async () => {
    const pay = await stack.token('alice', 'payments');
    const before = violations().length;
    for (let i = 0; i < 2; i++) {
      const r = await stack.gql('query Score { me { accounts { id } adScore } }', undefined, pay);
      expect(r.data ?? null).toBeNull();
    }
    expect(violations().length).toBe(before + 2);
  });

  it('plans that keep protected data away from ads still run on the same supergraph', async () => {
    const ads = await stack.token('alice', 'advertising');
    const r = await stack.gql<{ me: { sponsoredOffers: unknown[] } }>('{ me { id sponsoredOffers { id merchant { name } } } }', undefined, ads);
    expect(expectData(r).me.sponsoredOffers.length).toBeGreaterThan(0);
  });

  it('checkQueryPlan flags a protected field in the selection of a fetch to ads (pure check)', () => {
    const policy = policyFromSupergraph(supergraphSdl);
    const plan = {
      kind: 'QueryPlan' as const,
      node: {
        kind: 'Sequence' as const,
        nodes: [
          {
            kind: 'Fetch' as const,
            serviceName: 'accounts',
            operation: '{ me { __typename id accounts { mask } } }',
            operationKind: 'query' as never,
            operationName: undefined,
          },
          adsUserFetch(['me'], 'accounts{mask balance{current{amount}}}'),
        ],
      },
    };
    const v = checkQueryPlan(policy, plan);
    expect(v).toEqual([{ serviceName: 'ads', where: 'selection', coordinates: ['Account.balance', 'Account.mask', 'Balance.current', 'User.accounts'] }]);
    // The fetch to accounts (payments zone) is not the plan check's business: layers 2 and 4 are.
  });
});
