/** The committed supergraph (schema/supergraph.graphql, written by `npm run compose`). */
import fs from 'node:fs';

export const SUPERGRAPH_PATH = new URL('./supergraph.graphql', import.meta.url);

export function readSupergraph(): string {
  return fs.readFileSync(SUPERGRAPH_PATH, 'utf8');
}
