/**
 * Trusted documents (a persisted-query safelist): the operations paygraph's own clients send,
 * listed in a manifest built from operations/paygraph.graphql by `npm run documents`, each with
 * the sha256 of its text as its id. Apollo Router (persisted query lists) and Hive Gateway
 * (persisted documents) close the arbitrary-query surface the same way.
 *
 * In `required` mode (NODE_ENV=production unless PAYGRAPH_TRUSTED_DOCUMENTS says otherwise) the
 * gateway executes an operation only if it is in the manifest, sent by id (Apollo's persisted-query
 * extension, `extensions.persistedQuery.sha256Hash`, with no query or an empty one) or as the
 * exact text; anything else is refused before the fence's own check: an unknown id with
 * PERSISTED_QUERY_NOT_FOUND (Apollo Server's persisted-query step, which clients know), other
 * text with OPERATION_NOT_TRUSTED; both are counted, and an untrusted operation that selects
 * payment-only data is audited as refused (Fence.recordRefusal). In `any` mode (development)
 * every document runs, and ids in the manifest are still resolved.
 *
 * Either way the manifest names the operation in metrics: a client-chosen operation name never
 * becomes a label (GatewayMetrics), an operation outside the manifest is `unlisted`.
 *
 * The manifest format is Apollo's (`apollo-persisted-query-manifest`, version 1), so clients
 * built with Apollo's tooling can use it as it is.
 */
import { createHash } from 'node:crypto';
import type { ApolloServerPlugin, GraphQLRequestContextDidResolveOperation } from '@apollo/server';
import { Kind, parse, print, visit, type DefinitionNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import { z } from 'zod';
import { appError } from '../lib/errors.js';
import type { Fence } from '../fence/fence.js';
import { refuseBeforeFence } from '../fence/adapters/gateway-plugin.js';
import type { GatewayContext } from './context.js';
import type { GatewayMetrics } from './metrics.js';

export type TrustedDocumentsMode = 'required' | 'any';

/** The metrics label of every operation that is not in the manifest. */
export const UNLISTED = 'unlisted';

const manifestSchema = z.object({
  format: z.literal('apollo-persisted-query-manifest'),
  version: z.literal(1),
  operations: z.array(
    z.object({
      id: z.string().regex(/^[0-9a-f]{64}$/),
      name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
      type: z.enum(['query', 'mutation', 'subscription']),
      body: z.string().min(1),
    }),
  ),
});

export type PersistedQueryManifest = z.infer<typeof manifestSchema>;
export type ManifestOperation = PersistedQueryManifest['operations'][number];

export function documentId(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The manifest of a file of operations: one entry per named operation, its body the printed
 * operation followed by the fragments it uses (transitively), in the order of the file.
 */
export function buildManifest(source: string): PersistedQueryManifest {
  const doc = parse(source);
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const operations: ManifestOperation[] = [];
  const names = new Set<string>();
  for (const def of doc.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    if (!def.name) throw new Error('every trusted operation needs a name');
    if (names.has(def.name.value)) throw new Error(`operation ${def.name.value} is defined twice`);
    names.add(def.name.value);
    const used = new Set<string>();
    const collect = (node: DefinitionNode) =>
      visit(node, {
        FragmentSpread(spread) {
          const name = spread.name.value;
          if (used.has(name)) return;
          const fragment = fragments.get(name);
          if (!fragment) throw new Error(`operation ${def.name!.value} uses an unknown fragment ${name}`);
          used.add(name);
          collect(fragment);
        },
      });
    collect(def);
    const definitions = [def, ...doc.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION && used.has(d.name.value))];
    const body = print({ kind: Kind.DOCUMENT, definitions });
    operations.push({ id: documentId(body), name: def.name.value, type: (def as OperationDefinitionNode).operation, body });
  }
  return { format: 'apollo-persisted-query-manifest', version: 1, operations };
}

/** A manifest's JSON text, checked (ids are the sha256 of their bodies). */
export function parseManifest(text: string): PersistedQueryManifest {
  const manifest = manifestSchema.parse(JSON.parse(text));
  for (const op of manifest.operations)
    if (documentId(op.body) !== op.id) throw new Error(`manifest operation ${op.name}: its id is not the sha256 of its body`);
  return manifest;
}

export interface TrustedDocuments {
  readonly mode: TrustedDocumentsMode;
  /** The manifest operation of a document hash (Apollo's `queryHash`: sha256 of the text), if any. */
  lookup(hash: string | undefined): ManifestOperation | undefined;
  /** The metrics label of a document hash: its manifest name, or `unlisted`. */
  label(hash: string | undefined): string;
  /** Resolves manifest ids to their text before Apollo's persisted-query step (requestDidStart). */
  readonly plugin: ApolloServerPlugin<GatewayContext>;
  /** The pipeline's trust step (didResolveOperation, before the fence): throws when refused. */
  check(rc: GraphQLRequestContextDidResolveOperation<GatewayContext>, fence: Fence | null): Promise<void>;
}

export function createTrustedDocuments(opts: { mode: TrustedDocumentsMode; manifest: PersistedQueryManifest; metrics: GatewayMetrics }): TrustedDocuments {
  const byId = new Map(opts.manifest.operations.map((o) => [o.id, o]));
  const required = opts.mode === 'required';
  const { metrics } = opts;
  return {
    mode: opts.mode,
    lookup: (hash) => (hash === undefined ? undefined : byId.get(hash)),
    label: (hash) => (hash === undefined ? UNLISTED : (byId.get(hash)?.name ?? UNLISTED)),
    plugin: {
      async requestDidStart({ request }) {
        const persisted = request.extensions?.persistedQuery as { sha256Hash?: unknown } | undefined;
        if (!persisted || typeof persisted.sha256Hash !== 'string') return;
        // graphql-ws requires a query string: an empty one means "by id" there.
        if (request.query !== undefined && request.query !== '') return;
        const known = byId.get(persisted.sha256Hash);
        if (known) {
          // Served from the manifest, not Apollo's persisted-query cache (which a client may write to).
          request.query = known.body;
          const { persistedQuery: _done, ...rest } = request.extensions!;
          request.extensions = rest;
          return;
        }
        request.query = undefined; // Apollo answers PERSISTED_QUERY_NOT_FOUND (its cache holds only trusted text: see check)
        if (required) metrics.untrustedOperations.inc({ reason: 'unknown_id' });
      },
    },
    async check(rc, fence) {
      if (!required || byId.has(rc.queryHash)) return;
      metrics.untrustedOperations.inc({ reason: 'not_in_manifest' });
      const refusal = appError(
        'OPERATION_NOT_TRUSTED',
        'This gateway executes only trusted operations (its manifest of persisted documents); send a listed operation by id (extensions.persistedQuery.sha256Hash) or as its exact text.',
      );
      // Refused before the fence decided, and recorded (once) when it selects payment-only data.
      if (fence) await refuseBeforeFence(fence, rc, refusal);
      throw refusal;
    },
  };
}
