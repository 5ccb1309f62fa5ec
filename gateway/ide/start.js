/* global React, ReactDOM, GraphiQL, document, location */
// The development IDE's start script (gateway/ide.ts serves it, with everything it imports, from
// the gateway itself). Queries and mutations go over HTTP POST to /graphql; subscriptions over
// graphql-ws on the same URL, with the headers editor's `authorization` as connectionParams
// (paygraph authenticates a WebSocket by its connection_init payload).
import { createClient } from './graphql-ws/client.js';

const httpUrl = new URL('/graphql', location.href).href;
const wsUrl = httpUrl.replace(/^http/, 'ws');

function isSubscription(params, opts) {
  const ops = (opts?.documentAST?.definitions ?? []).filter((d) => d.kind === 'OperationDefinition');
  const op = ops.find((d) => (params.operationName ? d.name?.value === params.operationName : true));
  return op?.operation === 'subscription';
}

function headersOf(opts) {
  const out = {};
  for (const [k, v] of Object.entries(opts?.headers ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

async function* subscribe(params, headers) {
  const client = createClient({ url: wsUrl, connectionParams: headers, lazy: true, retryAttempts: 0 });
  try {
    yield* client.iterate({ query: params.query, operationName: params.operationName ?? undefined, variables: params.variables ?? undefined });
  } finally {
    await client.dispose();
  }
}

async function fetcher(params, opts) {
  const headers = headersOf(opts);
  if (isSubscription(params, opts)) return subscribe(params, headers);
  const res = await fetch(httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify(params),
  });
  return res.json();
}

const defaultQuery = `# paygraph, in development. Put a token in Headers below:
#   {"authorization": "Bearer <token from npm start or npm run -s token -- alice payments>"}
query MyBalances {
  me {
    handle
    accounts {
      displayName
      balance { available { amount currency } }
    }
  }
}

# Subscriptions run over graphql-ws from here too:
# subscription ChargeAlerts { chargeAlertRaised { id riskScore reasons } }
`;

ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, { fetcher, defaultQuery, defaultHeaders: '{\n  "authorization": "Bearer "\n}', shouldPersistHeaders: false }),
);
