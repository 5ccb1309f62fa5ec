/**
 * Which zone resolves each field of the supergraph, read from its join directives: a field is
 * resolved by the subgraphs of its `@join__field(graph:)` applications that are not `external`, or,
 * without any, by every subgraph of its type's `@join__type`. An advertising field is one that only
 * advertising-zone subgraphs resolve (e.g. `User.sponsoredOffers`): selecting it under a
 * payment-only field would send bank-derived ids (who paid whom) to the advertising zone.
 */
import { Kind, type DocumentNode } from 'graphql';
import { directiveArg } from './marks.js';
import { isAdvertisingZone } from './policy.js';

/** `Type.field` -> the subgraphs (by name) that resolve it. */
function resolvingSubgraphs(supergraph: DocumentNode): Map<string, Set<string>> {
  const graphNames = new Map<string, string>(); // join__Graph enum value -> subgraph name
  for (const def of supergraph.definitions) {
    if (def.kind !== Kind.ENUM_TYPE_DEFINITION || def.name.value !== 'join__Graph') continue;
    for (const v of def.values ?? []) {
      const name = v.directives?.find((d) => d.name.value === 'join__graph');
      const n = name ? directiveArg(name, 'name') : undefined;
      graphNames.set(v.name.value, typeof n === 'string' ? n : v.name.value.toLowerCase());
    }
  }
  const graphOf = (d: { arguments?: readonly unknown[] } & Parameters<typeof directiveArg>[0]) => {
    const g = directiveArg(d, 'graph');
    return typeof g === 'string' ? (graphNames.get(g) ?? g.toLowerCase()) : null;
  };
  const out = new Map<string, Set<string>>();
  for (const def of supergraph.definitions) {
    if (def.kind !== Kind.OBJECT_TYPE_DEFINITION && def.kind !== Kind.INTERFACE_TYPE_DEFINITION) continue;
    const typeGraphs = (def.directives ?? []).filter((d) => d.name.value === 'join__type').map(graphOf);
    for (const f of def.fields ?? []) {
      const joins = (f.directives ?? []).filter((d) => d.name.value === 'join__field');
      const graphs = joins.length ? joins.filter((d) => directiveArg(d, 'external') !== true).map(graphOf) : typeGraphs;
      out.set(`${def.name.value}.${f.name.value}`, new Set(graphs.filter((g): g is string => g !== null)));
    }
  }
  return out;
}

/** The fields only advertising-zone subgraphs resolve. */
export function advertisingFields(supergraph: DocumentNode): Set<string> {
  const out = new Set<string>();
  for (const [coordinate, graphs] of resolvingSubgraphs(supergraph)) {
    if (graphs.size > 0 && [...graphs].every(isAdvertisingZone)) out.add(coordinate);
  }
  return out;
}
