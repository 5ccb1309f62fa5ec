/**
 * The app's trusted operations (operations/paygraph.graphql), the reference web client's
 * (web/src/operations.ts, as @apollo/client sends them), and their committed manifest
 * (operations/manifest.json, written by `npm run documents`; a test checks it is up to date).
 */
import fs from 'node:fs';
import { InMemoryCache } from '@apollo/client';
import { Kind, print, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { buildManifest, documentId, parseManifest, type ManifestOperation, type PersistedQueryManifest } from '../gateway/trusted-documents.js';
import * as webDocuments from '../web/src/operations.js';

export const OPERATIONS_PATH = new URL('./paygraph.graphql', import.meta.url);
export const MANIFEST_PATH = new URL('./manifest.json', import.meta.url);

/** The prefix of the web client's operations' manifest names (its names are the contract's, its selections its own). */
export const WEB_PREFIX = 'web_';

/**
 * The web client's documents as it sends them: @apollo/client's cache adds `__typename` to every
 * selection set (InMemoryCache.transformDocument) and prints the result, so that text, not the
 * source's, is what a production gateway must trust (by exact text over HTTP and graphql-ws).
 */
export function webOperations(): ManifestOperation[] {
  const cache = new InMemoryCache();
  const documents = Object.values(webDocuments).filter(
    (v): v is DocumentNode => typeof v === 'object' && v !== null && (v as DocumentNode).kind === Kind.DOCUMENT,
  );
  return documents
    .map((doc) => {
      const def = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
      const body = print(cache.transformDocument(doc));
      return { id: documentId(body), name: `${WEB_PREFIX}${def.name!.value}`, type: def.operation, body };
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1)); // by name: a module namespace's order is the loader's
}

/** The manifest the operations file and the web client give (what `npm run documents` writes). */
export function manifestFromOperations(): PersistedQueryManifest {
  const manifest = buildManifest(fs.readFileSync(OPERATIONS_PATH, 'utf8'));
  const ids = new Set(manifest.operations.map((o) => o.id));
  for (const op of webOperations()) if (!ids.has(op.id)) manifest.operations.push(op);
  return manifest;
}

/** The manifest's file text: JSON, two-space indented, one trailing newline. */
export function manifestText(manifest: PersistedQueryManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** A manifest file (default: the committed one), checked. */
export function readManifest(file: string | URL = MANIFEST_PATH): PersistedQueryManifest {
  const where = file instanceof URL ? file.pathname : file;
  try {
    return parseManifest(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`trusted-documents manifest ${where}: ${(err as Error).message}`, { cause: err });
  }
}
