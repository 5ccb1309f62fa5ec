/**
 * One Apollo Client per signed-in session: HTTP for queries and mutations on the same origin's
 * /graphql, graphql-ws on the same URL for subscriptions (authenticated in connection_init), and a
 * normalized cache whose history lists page by Relay cursors (pagination.ts).
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient, type Client } from 'graphql-ws';
import { OperationTypeNode } from 'graphql';
import { historyPagination } from './pagination.js';

export type LinkState = 'connecting' | 'connected' | 'offline';

export interface Session {
  client: ApolloClient;
  ws: Client;
  /** Closes the socket and clears the cache (sign-out). */
  close(): Promise<void>;
}

export function createCache(): InMemoryCache {
  return new InMemoryCache({
    typePolicies: {
      Account: { fields: { transactions: historyPagination() } },
      User: { fields: { dataAccessLog: historyPagination() } },
      // `account(id:)` reads an account already in the cache (from MyBalances) without a request.
      Query: {
        fields: {
          account: { read: (existing, { args, toReference }) => existing ?? toReference({ __typename: 'Account', id: args?.id as string }) },
        },
      },
    },
  });
}

export function graphqlWsUrl(location: Pick<Location, 'protocol' | 'host'>): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
}

export function createSession(token: string, onLinkState: (s: LinkState) => void): Session {
  const authorization = `Bearer ${token}`;
  const ws = createClient({
    url: graphqlWsUrl(window.location),
    connectionParams: { authorization },
    lazy: false,
    // A payments app keeps trying: the gateway restarting or the laptop sleeping must not end
    // the alert stream. graphql-ws backs off exponentially with jitter between attempts.
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    on: {
      connecting: () => onLinkState('connecting'),
      connected: () => onLinkState('connected'),
      closed: () => onLinkState('offline'),
    },
  });
  const http = new HttpLink({ uri: '/graphql', headers: { authorization, 'apollographql-client-name': 'paygraph-web' } });
  const client = new ApolloClient({
    link: ApolloLink.split(({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION, new GraphQLWsLink(ws), http),
    cache: createCache(),
  });
  return {
    client,
    ws,
    async close() {
      client.stop();
      await client.clearStore();
      await ws.dispose();
    },
  };
}
