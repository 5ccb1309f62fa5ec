/**
 * Signing as one of the test stack's services (TEST_KEYS), the way the services themselves sign
 * (lib/transport/signing.ts): GraphQL requests to a subgraph's /graphql, internal calls. Tests
 * sign as the gateway to reach a subgraph directly, and as another service (ads) to show it is
 * refused.
 */
import { ANONYMOUS, type Caller } from '../../lib/auth.js';
import type { ServiceName, SubgraphName } from '../../lib/config.js';
import { serviceKeys, type KeyRing, type Signer } from '../../lib/transport/keys.js';
import { encodeCaller, signMessage } from '../../lib/transport/signing.js';
import { TEST_KEYS } from './stack.js';

/** The signer of `service` in `ring` (default this test process's TEST_KEYS). */
export function signerOf(service: ServiceName, ring: KeyRing = TEST_KEYS): Signer {
  return serviceKeys(ring, service, []);
}

export interface SignOptions {
  /** Who signs (default the gateway of TEST_KEYS). */
  as?: ServiceName | Signer;
  /** The signature's time (default now). */
  now?: number;
}

const signer = (as: SignOptions['as']) => (typeof as === 'object' ? as : signerOf(as ?? 'gateway'));

/** Headers signing a GraphQL request with exactly `body` to `target`'s /graphql, for `caller`. */
export function signGraphQL(target: SubgraphName, caller: Caller, body: string, opts: SignOptions = {}): Promise<Record<string, string>> {
  return signMessage(signer(opts.as), { method: 'POST', path: '/graphql', target, caller: encodeCaller(caller), body }, opts.now);
}

/** Headers signing an internal call with exactly `body` to `target`'s /internal/<route> (anonymous caller, as callInternal). */
export function signInternal(target: SubgraphName, route: string, body: string, opts: SignOptions = {}): Promise<Record<string, string>> {
  return signMessage(signer(opts.as), { method: 'POST', path: `/internal/${route}`, target, caller: encodeCaller(ANONYMOUS), body }, opts.now);
}
