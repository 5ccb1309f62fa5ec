/**
 * npm run documents: builds the trusted-documents manifest (operations/manifest.json) from the
 * app's operations (operations/paygraph.graphql), after validating every operation against the
 * API schema of the committed supergraph. The gateway, in required mode, executes only these
 * (gateway/trusted-documents.ts, docs/api.md#trusted-documents).
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, validate } from 'graphql';
import { fail, say } from '../lib/cli.js';
import { Planner } from '../gateway/planner.js';
import { MANIFEST_PATH, manifestFromOperations, manifestText } from '../operations/manifest.js';
import { readSupergraph } from '../schema/supergraph.js';

const manifest = manifestFromOperations();
const schema = new Planner(readSupergraph()).apiGraphQLSchema;
const problems = manifest.operations.flatMap((op) => validate(schema, parse(op.body)).map((e) => `${op.name}: ${e.message}`));
if (problems.length) fail(['The operations do not validate against the supergraph:', ...problems.map((p) => `  - ${p}`)].join('\n'));
fs.writeFileSync(MANIFEST_PATH, manifestText(manifest));
say(`Wrote ${manifest.operations.length} trusted operations (${manifest.operations.map((o) => o.name).join(', ')}) to ${fileURLToPath(MANIFEST_PATH)}`);
