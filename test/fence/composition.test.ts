/**
 * Fence layer 1: composition rules. Each rule is exercised with a deliberately bad ads SDL; the real
 * subgraphs pass, and `composeSupergraph` (what `npm run compose` runs) fails naming the field.
 */
import { parse, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { composeSupergraph } from '../../schema/compose.js';
import { checkFenceComposition, type FenceRule } from '../../fence/compose-lint.js';
import { SUBGRAPH_ZONES } from '../../fence/policy.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires", "@provides", "@shareable"])';

const realTypeDefs = (): Record<SubgraphName, DocumentNode> =>
  Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, SUBGRAPHS[n].typeDefs])) as Record<SubgraphName, DocumentNode>;

function withAds(adsSdl: string): Record<SubgraphName, DocumentNode> {
  return { ...realTypeDefs(), ads: parse(adsSdl) };
}

function violations(adsSdl: string) {
  const defs = withAds(adsSdl);
  return checkFenceComposition(SUBGRAPH_NAMES.map((name) => ({ name, zone: SUBGRAPH_ZONES[name], typeDefs: defs[name] })));
}

const BAD: { rule: FenceRule; coordinate: string; sdl: string }[] = [
  {
    rule: 'defines-protected-field',
    coordinate: 'Account.balance',
    sdl: `${LINK}
      type Account @key(fields: "id") { id: ID! balance: Balance! @shareable }
      type Balance @shareable { asOf: String }`,
  },
  {
    rule: 'externals-protected-field',
    coordinate: 'Account.mask',
    sdl: `${LINK}
      type Account @key(fields: "id") { id: ID! mask: String @external }`,
  },
  {
    rule: 'requires-protected-field',
    coordinate: 'Account.mask',
    sdl: `${LINK}
      type Account @key(fields: "id") { id: ID! mask: String @external adScore: Int @requires(fields: "mask") }`,
  },
  {
    rule: 'requires-protected-field',
    coordinate: 'Balance.current',
    sdl: `${LINK}
      type Account @key(fields: "id") { id: ID! balance: Balance! @external tier: Int @requires(fields: "balance { current { amount } }") }
      type Balance { current: Money! @external }
      type Money { amount: String! @external }`,
  },
  {
    rule: 'provides-protected-field',
    coordinate: 'Account.mask',
    sdl: `${LINK}
      type User @key(fields: "id") { id: ID! favoriteCard: Account @provides(fields: "mask") }
      type Account @key(fields: "id") { id: ID! mask: String @external }`,
  },
  {
    rule: 'key-contains-protected-field',
    coordinate: 'Account.mask',
    sdl: `${LINK}
      type Account @key(fields: "id mask", resolvable: false) { id: ID! mask: String @external }`,
  },
  {
    rule: 'returns-protected-type',
    coordinate: 'Transaction',
    sdl: `${LINK}
      type Query { lastPurchaseSignal: Transaction }
      type Transaction @key(fields: "id", resolvable: false) { id: ID! }`,
  },
  {
    rule: 'returns-protected-type',
    coordinate: 'ChargeAlert',
    sdl: `${LINK}
      type User @key(fields: "id") { id: ID! recentAlerts: [ChargeAlert!]! }
      type ChargeAlert @key(fields: "id", resolvable: false) { id: ID! }`,
  },
];

describe('layer 1: composition rules for the advertising zone', () => {
  it('the real subgraphs pass the fence rules and compose', () => {
    const defs = realTypeDefs();
    expect(checkFenceComposition(SUBGRAPH_NAMES.map((name) => ({ name, zone: SUBGRAPH_ZONES[name], typeDefs: defs[name] })))).toEqual([]);
    expect(composeSupergraph(defs).ok).toBe(true);
  });

  for (const bad of BAD) {
    it(`${bad.rule}: ${bad.coordinate}`, () => {
      const found = violations(bad.sdl);
      const hit = found.find((v) => v.rule === bad.rule && v.coordinate === bad.coordinate);
      expect(hit, JSON.stringify(found, null, 2)).toBeDefined();
      expect(hit!.subgraph).toBe('ads');
      expect(hit!.message).toContain(bad.coordinate);
      expect(hit!.message).toContain(bad.rule);

      // What `npm run compose` runs fails, with the coordinate and the rule in the error.
      const composed = composeSupergraph(withAds(bad.sdl));
      expect(composed.ok).toBe(false);
      if (!composed.ok) expect(composed.errors.some((e) => e.includes(bad.coordinate) && e.includes(bad.rule))).toBe(true);
    });
  }

  it('follows aliased federation imports', () => {
    const found =
      violations(`extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", { name: "@external", as: "@ext" }, { name: "@requires", as: "@needs" }])
      type Account @key(fields: "id") { id: ID! mask: String @ext score: Int @needs(fields: "mask") }`);
    // Account is bank data as a whole: its key and every field it defines count too.
    expect([...new Set(found.map((v) => v.rule))].sort()).toEqual([
      'defines-protected-field',
      'externals-protected-field',
      'key-contains-protected-field',
      'requires-protected-field',
    ]);
    expect(found.filter((v) => v.rule === 'externals-protected-field').map((v) => v.coordinate)).toEqual(['Account.mask']);
  });

  it('a protected type is protected whole: every field of it counts, even with no field marked', () => {
    const found = violations(`${LINK}
      type Transfer @key(fields: "id", resolvable: false) { id: ID! }`);
    expect(found.map((v) => `${v.rule} ${v.coordinate}`)).toEqual(
      expect.arrayContaining(['defines-protected-field Transfer.id', 'key-contains-protected-field Transfer.id']),
    );
  });

  it('an ads subgraph referencing only unprotected data passes', () => {
    expect(
      violations(`${LINK}
        type User @key(fields: "id") { id: ID! sponsoredOffers: [Offer!]! }
        type Offer { id: ID! headline: String! merchant: Merchant! }
        type Merchant @key(fields: "id", resolvable: false) { id: ID! }`),
    ).toEqual([]);
  });

  it('a linked account is bank data: even a stub reference to Account is refused to ads', () => {
    const found = violations(`${LINK}
      type Account @key(fields: "id", resolvable: false) { id: ID! }`);
    expect(found.map((v) => `${v.rule} ${v.coordinate}`)).toEqual(
      expect.arrayContaining(['defines-protected-field Account.id', 'key-contains-protected-field Account.id']),
    );
  });
});
