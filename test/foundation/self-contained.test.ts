/**
 * The test suite is self-contained: it reads the API contract from the repository's own copy and
 * no test source refers to a file outside the repository (a fresh clone has nothing beside it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { CONTRACT_PATH, OPS } from '../helpers/contract.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TEST_DIR = path.join(ROOT, 'test');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|graphql)$/.test(e.name) ? [p] : [];
  });
}

const inside = (p: string) => !path.relative(ROOT, p).startsWith('..') && !path.isAbsolute(path.relative(ROOT, p));

it('loads every contract operation from the copy in test/contract/', () => {
  expect(inside(fileURLToPath(CONTRACT_PATH))).toBe(true);
  expect(Object.keys(OPS).sort()).toEqual(
    [
      'ChargeAlerts',
      'ConsentDisclosure',
      'GrantConsent',
      'History',
      'Merchants',
      'MyAlerts',
      'MyBalances',
      'MyConsents',
      'Offers',
      'Oversight',
      'OversightAccess',
      'Pay',
      'ResolveAlert',
      'RevokeConsent',
      'SendMoney',
    ].sort(),
  );
});

it('no test source refers to a path outside the repository', () => {
  const outside: string[] = [];
  for (const file of [...sources(TEST_DIR), path.join(ROOT, 'vitest.config.ts'), path.join(ROOT, 'vitest.scale.config.ts')]) {
    const text = fs.readFileSync(file, 'utf8');
    const where = path.relative(ROOT, file);
    // Relative path literals (starting with ./ or ../), resolved from the file's folder: inside the
    // repository, and there (an import of x.js is the source x.ts).
    for (const m of text.matchAll(/(['"`])(\.{1,2}\/[^'"`$\s]*)\1/g)) {
      const target = path.resolve(path.dirname(file), m[2]!);
      if (!inside(target)) outside.push(`${where}: ${m[2]} (outside the repository)`);
      else if (!fs.existsSync(target) && !fs.existsSync(target.replace(/\.js$/, '.ts'))) outside.push(`${where}: ${m[2]} (missing)`);
    }
    // Absolute paths to a home, a workspace or a sibling checkout, and documents that are not in the repository.
    for (const m of text.matchAll(/(['"`])(\/(?:home|Users|work|root|srv|mnt)\/[^'"`]*)\1/g)) outside.push(`${where}: ${m[2]}`);
    for (const m of text.matchAll(/\bDESIGN\.md\b|\bshared\/contract\b/g)) outside.push(`${where}: ${m[0]}`);
  }
  expect(outside).toEqual([]);
});
