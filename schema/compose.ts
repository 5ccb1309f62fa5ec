/** Composes every subgraph's SDL into the supergraph with @apollo/composition. */
import { composeServices } from '@apollo/composition';
import type { DocumentNode } from 'graphql';
import { SUBGRAPH_NAMES, type SubgraphName } from '../lib/config.js';
import { checkFenceComposition } from '../fence/compose-lint.js';
import { SUBGRAPH_ZONES } from '../fence/policy.js';

/** Placeholder routing URLs in the committed supergraph; the gateway routes by subgraph name. */
export const routingUrl = (name: SubgraphName) => `http://${name}.paygraph.internal/graphql`;

export type ComposeResult = { ok: true; supergraphSdl: string; hints: string[] } | { ok: false; errors: string[] };

export function composeSupergraph(typeDefs: Readonly<Record<SubgraphName, DocumentNode>>): ComposeResult {
  // Fence layer 1: the advertising zone may not resolve, receive or reference payment-only data.
  const violations = checkFenceComposition(SUBGRAPH_NAMES.map((name) => ({ name, zone: SUBGRAPH_ZONES[name], typeDefs: typeDefs[name] })));
  if (violations.length > 0) return { ok: false, errors: violations.map((v) => v.message) };
  const result = composeServices(SUBGRAPH_NAMES.map((name) => ({ name, url: routingUrl(name), typeDefs: typeDefs[name] })));
  if (result.errors && result.errors.length > 0) {
    return { ok: false, errors: result.errors.map((e) => `${(e.extensions?.code as string | undefined) ?? 'COMPOSITION'}: ${e.message}`) };
  }
  if (!('supergraphSdl' in result) || !result.supergraphSdl) return { ok: false, errors: ['composition produced no supergraph'] };
  return { ok: true, supergraphSdl: result.supergraphSdl, hints: result.hints.map((h) => h.toString()) };
}
