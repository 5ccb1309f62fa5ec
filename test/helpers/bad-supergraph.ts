/**
 * A deliberately bad supergraph: the real subgraphs with the ads subgraph replaced by `adsSdl`,
 * composed with plain composeServices, bypassing the composition lint (fence layer 1) as an
 * attacker or a mistake would. For the tests that prove the later layers hold on their own.
 */
import { composeServices } from '@apollo/composition';
import type { DocumentNode } from 'graphql';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { routingUrl } from '../../schema/compose.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';

/** The subgraphs' SDL with ads replaced, by name. */
export function subgraphsWithAds(adsSdl: DocumentNode): Record<SubgraphName, DocumentNode> {
  return { ...Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, SUBGRAPHS[n].typeDefs])), ads: adsSdl } as Record<SubgraphName, DocumentNode>;
}

export function composeWithoutLint(adsSdl: DocumentNode): string {
  const defs = subgraphsWithAds(adsSdl);
  const result = composeServices(SUBGRAPH_NAMES.map((name) => ({ name, url: routingUrl(name), typeDefs: defs[name] })));
  if (result.errors?.length || !('supergraphSdl' in result) || !result.supergraphSdl)
    throw new Error(`bad supergraph did not compose: ${result.errors?.map((e) => e.message).join('; ')}`);
  return result.supergraphSdl;
}

/**
 * A hand-made plan node: a fetch to ads for User entities (the representations `__typename` and
 * `id`) under a Flatten at `path`, sending `userSelection` (e.g. `sponsoredOffers{id}`).
 */
export function adsUserFetch(path: string[], userSelection: string) {
  return {
    kind: 'Flatten' as const,
    path,
    node: {
      kind: 'Fetch' as const,
      serviceName: 'ads',
      requires: [
        {
          kind: 'InlineFragment' as const,
          typeCondition: 'User',
          selections: [
            { kind: 'Field' as const, name: '__typename' },
            { kind: 'Field' as const, name: 'id' },
          ],
        },
      ],
      operation: `query($representations:[_Any!]!){_entities(representations:$representations){...on User{${userSelection}}}}`,
      operationKind: 'query' as never,
      operationName: undefined,
    },
  };
}
