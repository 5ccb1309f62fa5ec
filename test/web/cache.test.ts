/**
 * The web client's cache and submission rules, on a real Apollo InMemoryCache: history pages
 * append by cursor, a re-read first page splices new rows on top of the list already scrolled
 * (web/src/pagination.ts), and one idempotency key per form submission (web/src/idempotency.ts).
 */
import { gql } from '@apollo/client';
import { expect, it } from 'vitest';
import { createCache } from '../../web/src/apollo.js';
import { submissionKey } from '../../web/src/idempotency.js';

const HISTORY = gql`
  query History($accountId: ID!, $first: Int, $after: String) {
    account(id: $accountId) {
      id
      transactions(first: $first, after: $after) {
        totalCount
        edges {
          cursor
          node {
            id
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`;

function page(ids: number[], hasNextPage: boolean, totalCount: number) {
  return {
    account: {
      __typename: 'Account',
      id: 'acc_1',
      transactions: {
        __typename: 'TransactionConnection',
        totalCount,
        edges: ids.map((i) => ({ __typename: 'TransactionEdge', cursor: `c${i}`, node: { __typename: 'Transaction', id: `t${i}` } })),
        pageInfo: { __typename: 'PageInfo', hasNextPage, endCursor: `c${ids[ids.length - 1]}` },
      },
    },
  };
}
const ids = (n: number, from: number) => Array.from({ length: n }, (_, i) => from - i);

function read(cache: ReturnType<typeof createCache>) {
  const data = cache.readQuery<ReturnType<typeof page>>({ query: HISTORY, variables: { accountId: 'acc_1', first: 3 } });
  const t = data!.account.transactions;
  return { ids: t.edges.map((e) => e.node.id), hasNextPage: t.pageInfo.hasNextPage, endCursor: t.pageInfo.endCursor, totalCount: t.totalCount };
}

it('appends the next page by cursor, then splices a re-read first page with new rows on top', () => {
  const cache = createCache();
  cache.writeQuery({ query: HISTORY, variables: { accountId: 'acc_1', first: 3 }, data: page(ids(3, 100), true, 10) });
  cache.writeQuery({ query: HISTORY, variables: { accountId: 'acc_1', first: 3, after: 'c98' }, data: page(ids(3, 97), true, 10) });
  expect(read(cache)).toEqual({ ids: ['t100', 't99', 't98', 't97', 't96', 't95'], hasNextPage: true, endCursor: 'c95', totalCount: 10 });

  // Two new rows (102, 101): the poll's first page ends on a row already cached.
  cache.writeQuery({ query: HISTORY, variables: { accountId: 'acc_1', first: 3 }, data: page([102, 101, 100], true, 12) });
  expect(read(cache)).toEqual({ ids: ['t102', 't101', 't100', 't99', 't98', 't97', 't96', 't95'], hasNextPage: true, endCursor: 'c95', totalCount: 12 });

  // Nothing new: the list stays as scrolled.
  cache.writeQuery({ query: HISTORY, variables: { accountId: 'acc_1', first: 3 }, data: page([102, 101, 100], true, 12) });
  expect(read(cache).ids).toHaveLength(8);

  // More new rows than a page (no overlap): the first page replaces the list, as relayStylePagination does.
  cache.writeQuery({ query: HISTORY, variables: { accountId: 'acc_1', first: 3 }, data: page([200, 199, 198], true, 20) });
  expect(read(cache)).toEqual({ ids: ['t200', 't199', 't198'], hasNextPage: true, endCursor: 'c198', totalCount: 20 });
});

it('reuses one idempotency key for every retry of a submission, and a new one once the API answered', () => {
  let n = 0;
  const key = submissionKey(() => `k${++n}`);
  const first = key.current();
  expect(key.current()).toBe(first); // a retry after a network error
  key.settled(); // the API answered (or the user edited the form)
  const second = key.current();
  expect(second).not.toBe(first);
  expect([first, second]).toEqual(['web-k1', 'web-k2']);
  expect(submissionKey().current()).toMatch(/^web-[0-9a-f-]{36}$/);
});
