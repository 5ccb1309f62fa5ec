/**
 * The API contract operations, by name: the repository's own copy in test/contract/operations.graphql
 * (the client operations the public API must serve through the gateway, as written).
 */
import fs from 'node:fs';
import { parse, print, type OperationDefinitionNode } from 'graphql';

export const CONTRACT_PATH = new URL('../contract/operations.graphql', import.meta.url);

function loadContract(): Record<string, string> {
  const doc = parse(fs.readFileSync(CONTRACT_PATH, 'utf8'));
  const out: Record<string, string> = {};
  for (const def of doc.definitions) {
    const op = def as OperationDefinitionNode;
    if (op.name) out[op.name.value] = print(op);
  }
  return out;
}

export const OPS = loadContract();

export function op(name: string): string {
  const text = OPS[name];
  if (!text) throw new Error(`contract has no operation ${name}`);
  return text;
}
