/**
 * The peer leg's gateway (docs/performance.md, "Peer"): Hive Gateway (`@graphql-hive/gateway-runtime`,
 * a dev dependency) serving the same supergraph over the same running subgraphs. Like paygraph's
 * gateway it verifies the client's bearer token (the same verifier, remembered per token as
 * paygraph's is) and signs every subgraph request as `gateway` with the project's own RFC 9421
 * signer (lib/transport/signing.ts), through its fetch hook: the subgraphs cannot tell the two
 * gateways apart. It has no data-use fence (no operation check, no audit append): that is the
 * work paygraph does on top, and what the ratio prices.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import { bearerToken, createTokenVerifier, secretVerifier, type VerifiedToken } from '../lib/auth.js';
import type { Signer } from '../lib/transport/keys.js';
import { encodeCaller, REQUEST_ID_HEADER, signMessage } from '../lib/transport/signing.js';
import type { SubgraphName } from '../lib/config.js';

export interface PeerGateway {
  url: string;
  stop(): Promise<void>;
}

export async function startPeerGateway(opts: {
  supergraphSdl: string;
  subgraphUrls: Record<SubgraphName, string>;
  signer: Signer;
  jwtSecret: string;
}): Promise<PeerGateway> {
  const verify = createTokenVerifier(secretVerifier(opts.jwtSecret));
  const tokens = new Map<string, Promise<VerifiedToken>>();
  let requests = 0;
  const runtime = createGatewayRuntime({
    supergraph: opts.supergraphSdl,
    logging: false,
    maskedErrors: false,
    graphqlEndpoint: '/graphql',
    plugins: () => [
      {
        async onFetch({ url, options, setURL, setOptions, context }) {
          // The supergraph names each subgraph by host (http://<name>.paygraph.internal/graphql).
          const name = new URL(url).hostname.split('.')[0] as SubgraphName;
          const target = opts.subgraphUrls[name];
          if (!target) throw new Error(`peer gateway: no URL for subgraph ${name}`);
          const token = bearerToken((context as { request?: Request } | undefined)?.request?.headers.get('authorization'));
          let who: VerifiedToken | null = null;
          if (token) {
            let p = tokens.get(token);
            if (!p) tokens.set(token, (p = verify(token)));
            who = await p;
          }
          const caller = encodeCaller({ userId: who?.userId ?? null, purpose: who?.purpose ?? null, client: 'peer' });
          const body = typeof options.body === 'string' ? options.body : '';
          const signed = await signMessage(opts.signer, { method: 'POST', path: new URL(target).pathname, target: name, caller, body });
          setURL(target);
          setOptions({ ...options, headers: { ...(options.headers as Record<string, string>), ...signed, [REQUEST_ID_HEADER]: `peer-${requests++}` } });
        },
      },
    ],
  });
  const server = http.createServer(runtime as unknown as http.RequestListener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await (runtime as unknown as { dispose?: () => Promise<void> }).dispose?.();
    },
  };
}
