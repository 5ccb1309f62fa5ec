/** npm run compose: composes every subgraph into schema/supergraph.graphql, or fails loudly. */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fail, say } from '../lib/cli.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../lib/config.js';
import { composeSupergraph } from '../schema/compose.js';
import { SUPERGRAPH_PATH } from '../schema/supergraph.js';
import { SUBGRAPHS } from '../subgraphs/index.js';

const typeDefs = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, SUBGRAPHS[n].typeDefs])) as Record<
  SubgraphName,
  (typeof SUBGRAPHS)[SubgraphName]['typeDefs']
>;
const result = composeSupergraph(typeDefs);
if (!result.ok) fail([`Composition failed with ${result.errors.length} error(s):`, ...result.errors.map((e) => `  - ${e}`)].join('\n'));
fs.writeFileSync(SUPERGRAPH_PATH, result.supergraphSdl);
say(`Composed ${SUBGRAPH_NAMES.length} subgraphs (${SUBGRAPH_NAMES.join(', ')}) into ${fileURLToPath(SUPERGRAPH_PATH)}`);
if (result.hints.length) {
  // Hints are advisory (mostly entity descriptions that differ per subgraph, on purpose).
  if (process.argv.includes('--verbose')) say(result.hints.map((h) => `  - ${h}`).join('\n'));
  else say(`${result.hints.length} composition hint(s); run with --verbose to print them.`);
}
