/** The contract operations, verbatim from ../shared/contract/operations.graphql. */
import fs from 'node:fs';
import { parse, print, type OperationDefinitionNode } from 'graphql';

const CONTRACT = new URL('../../../shared/contract/operations.graphql', import.meta.url);

function loadContract(): Record<string, string> {
  const doc = parse(fs.readFileSync(CONTRACT, 'utf8'));
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
