/** The committed supergraph is what `npm run compose` produces from the subgraph SDLs. */
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { composeSupergraph } from '../../schema/compose.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';
import { SUPERGRAPH_PATH } from '../../schema/supergraph.js';

it('schema/supergraph.graphql is up to date (run `npm run compose`)', () => {
  const typeDefs = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, SUBGRAPHS[n].typeDefs])) as Record<
    SubgraphName,
    (typeof SUBGRAPHS)[SubgraphName]['typeDefs']
  >;
  const result = composeSupergraph(typeDefs);
  expect(result.ok ? [] : result.errors).toEqual([]);
  if (!result.ok) return;
  expect(fs.readFileSync(SUPERGRAPH_PATH, 'utf8')).toBe(result.supergraphSdl);
});

it('describes every type and field in every subgraph SDL', () => {
  const missing: string[] = [];
  for (const name of SUBGRAPH_NAMES) {
    for (const def of SUBGRAPHS[name].typeDefs.definitions) {
      if (!('name' in def) || !def.name || def.kind === 'DirectiveDefinition') continue;
      const typeName = def.name.value;
      if (['Query', 'Mutation', 'Subscription'].includes(typeName)) {
        // Root types are containers; their fields are described below.
      } else if (!('description' in def) || !def.description) missing.push(`${name}: ${typeName}`);
      const fields = 'fields' in def && def.fields ? def.fields : 'values' in def && def.values ? def.values : [];
      for (const f of fields as readonly { name: { value: string }; description?: unknown }[])
        if (!f.description) missing.push(`${name}: ${typeName}.${f.name.value}`);
    }
  }
  expect(missing).toEqual([]);
});
