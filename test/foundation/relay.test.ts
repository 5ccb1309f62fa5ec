/**
 * Relay-complete connections: every PageInfo has hasNextPage, hasPreviousPage, startCursor and
 * endCursor (the Relay cursor connections specification), and DateTime names its specification
 * with @specifiedBy, as introspection shows it through the gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oversightToken } from '../helpers/consent.js';
import { expectData } from '../helpers/matchers.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

interface Page {
  edges: { cursor: string }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}
const PAGE_INFO = 'pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';

let stack: TestStack;
let alice: string;
beforeAll(async () => {
  stack = await startTestStack();
  alice = await stack.token('alice');
});
afterAll(async () => {
  await stack?.stop();
});

describe('PageInfo', () => {
  it('has every field of the Relay specification', async () => {
    const r = await stack.gql<{ __type: { fields: { name: string; type: { kind: string; ofType: { name: string } | null; name: string | null } }[] } }>(
      '{ __type(name: "PageInfo") { fields { name type { kind name ofType { name } } } } }',
      {},
      alice,
    );
    const fields = Object.fromEntries(expectData(r).__type.fields.map((f) => [f.name, f.type.kind === 'NON_NULL' ? `${f.type.ofType!.name}!` : f.type.name]));
    expect(fields).toEqual({ hasNextPage: 'Boolean!', hasPreviousPage: 'Boolean!', startCursor: 'String', endCursor: 'String' });
  });

  async function walk(read: (after: string | null) => Promise<Page>): Promise<Page[]> {
    const pages: Page[] = [];
    let after: string | null = null;
    do {
      const page: Page = await read(after);
      pages.push(page);
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after !== null && pages.length < 50);
    return pages;
  }

  function expectRelayPages(pages: Page[]): void {
    expect(pages.length).toBeGreaterThan(1);
    pages.forEach((p, i) => {
      expect(p.pageInfo.hasPreviousPage).toBe(i > 0);
      expect(p.pageInfo.hasNextPage).toBe(i < pages.length - 1);
      expect(p.pageInfo.startCursor).toBe(p.edges[0]?.cursor ?? null);
      expect(p.pageInfo.endCursor).toBe(p.edges.at(-1)?.cursor ?? null);
    });
  }

  it('pages an account history forward with hasPreviousPage and startCursor', async () => {
    const pages = await walk(async (after) => {
      const r = await stack.gql<{ account: { transactions: Page } }>(
        `query($after: String) { account(id: "acc_alice_card") { transactions(first: 40, after: $after) { edges { cursor } ${PAGE_INFO} } } }`,
        { after },
        alice,
      );
      return expectData(r).account.transactions;
    });
    expectRelayPages(pages);
  });

  it('pages the data-access log the same way', async () => {
    for (let i = 0; i < 4; i++) await stack.gql('{ me { accounts { mask } } }', {}, alice); // records to page through
    const pages = await walk(async (after) => {
      const r = await stack.gql<{ me: { dataAccessLog: Page } }>(
        `query($after: String) { me { dataAccessLog(first: 2, after: $after) { edges { cursor } ${PAGE_INFO} } } }`,
        { after },
        alice,
      );
      return expectData(r).me.dataAccessLog;
    });
    expectRelayPages(pages);
  });

  it("pages a bank's oversight consents and access records the same way", async () => {
    const amex = await oversightToken('ins_amex'); // two seeded consents: alice's and dave's
    const consents = await walk(async (after) => {
      const r = await stack.gql<{ oversight: { consents: Page } }>(
        `query($after: String) { oversight { consents(first: 1, after: $after) { edges { cursor } ${PAGE_INFO} } } }`,
        { after },
        amex,
      );
      return expectData(r).oversight.consents;
    });
    expectRelayPages(consents);
    for (let i = 0; i < 3; i++) await stack.gql('{ me { accounts { mask } } }', {}, alice); // records naming alice's banks
    const chase = await oversightToken('ins_chase');
    const records = await walk(async (after) => {
      const r = await stack.gql<{ oversight: { accessRecords: Page } }>(
        `query($after: String) { oversight { accessRecords(first: 1, after: $after) { edges { cursor } ${PAGE_INFO} } } }`,
        { after },
        chase,
      );
      return expectData(r).oversight.accessRecords;
    });
    expectRelayPages(records);
  });

  it('an empty page has no cursors', async () => {
    const pages = await walk(async (after) => {
      const r = await stack.gql<{ account: { transactions: Page } }>(
        `query($after: String) { account(id: "acc_alice_card") { transactions(first: 100, after: $after) { edges { cursor } ${PAGE_INFO} } } }`,
        { after },
        alice,
      );
      return expectData(r).account.transactions;
    });
    const last = pages.at(-1)!.pageInfo.endCursor!;
    const empty = await stack.gql<{ account: { transactions: Page } }>(
      `query($after: String) { account(id: "acc_alice_card") { transactions(first: 5, after: $after) { edges { cursor } ${PAGE_INFO} } } }`,
      { after: last },
      alice,
    );
    expect(expectData(empty).account.transactions).toEqual({
      edges: [],
      pageInfo: { hasNextPage: false, hasPreviousPage: true, startCursor: null, endCursor: null },
    });
  });
});

it('DateTime names its specification (@specifiedBy)', async () => {
  const r = await stack.gql<{ __type: { specifiedByURL: string | null } }>('{ __type(name: "DateTime") { specifiedByURL } }', {}, alice);
  expect(expectData(r).__type.specifiedByURL).toBe('https://scalars.graphql.org/chillicream/date-time.html');
});
