/**
 * The app's trusted operations (operations/paygraph.graphql) and their committed manifest
 * (operations/manifest.json, written by `npm run documents`; a test checks it is up to date).
 */
import fs from 'node:fs';
import { buildManifest, parseManifest, type PersistedQueryManifest } from '../gateway/trusted-documents.js';

export const OPERATIONS_PATH = new URL('./paygraph.graphql', import.meta.url);
export const MANIFEST_PATH = new URL('./manifest.json', import.meta.url);

/** The manifest the operations file gives (what `npm run documents` writes). */
export function manifestFromOperations(): PersistedQueryManifest {
  return buildManifest(fs.readFileSync(OPERATIONS_PATH, 'utf8'));
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
