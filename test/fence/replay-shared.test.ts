/**
 * Fence layer 4 across processes: with several processes of one subgraph (REDIS_URL), a signed
 * request accepted by one process is refused as a replay by the others (nonces claimed in Redis);
 * without Redis each process only knows its own nonces. Needs Redis: REDIS_URL or
 * PAYGRAPH_TEST_REDIS_URL (`npm run test:scale` sets them); skipped otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { ANONYMOUS } from '../../lib/auth.js';
import { serviceKeys } from '../../lib/transport/keys.js';
import { signersTrustedBy } from '../../subgraphs/definition.js';
import { startSubgraph, type SubgraphService } from '../../subgraphs/service.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';
import { signGraphQL } from '../helpers/signing.js';
import { TEST_KEYS } from '../helpers/stack.js';
import { prepareDb } from '../../runtime/database.js';

const redisUrl = process.env.REDIS_URL || process.env.PAYGRAPH_TEST_REDIS_URL || undefined;

describe.skipIf(!redisUrl)('replay protection shared by the processes of a subgraph (needs Redis)', () => {
  const dbs: Knex[] = [];
  const services: SubgraphService[] = [];
  const start = async (shared: boolean) => {
    const { db } = await prepareDb('merchants', ':memory:');
    dbs.push(db);
    const s = await startSubgraph(SUBGRAPHS.merchants, {
      db,
      keys: serviceKeys(TEST_KEYS, 'merchants', signersTrustedBy(SUBGRAPHS.merchants)),
      redisUrl: shared ? redisUrl : undefined,
    });
    services.push(s);
    return s;
  };
  let a: SubgraphService;
  let b: SubgraphService;
  let lonelyA: SubgraphService;
  let lonelyB: SubgraphService;
  beforeAll(async () => {
    [a, b, lonelyA, lonelyB] = [await start(true), await start(true), await start(false), await start(false)];
  });
  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const db of dbs) await db.destroy();
  });

  const body = JSON.stringify({ query: '{ merchants(first: 1) { id } }' });
  const post = (s: SubgraphService, headers: Record<string, string>) =>
    fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('refuses at process B a signed request already accepted by process A', async () => {
    const headers = await signGraphQL('merchants', ANONYMOUS, body);
    expect((await post(a, headers)).status).toBe(200);
    const replay = await post(b, headers);
    expect(replay.status).toBe(401);
    expect(await replay.text()).toMatch(/replayed signature/);
    // A fresh signature is accepted by either.
    expect((await post(b, await signGraphQL('merchants', ANONYMOUS, body))).status).toBe(200);
  });

  it('without the shared store, each process knows only its own nonces (what the store closes)', async () => {
    const headers = await signGraphQL('merchants', ANONYMOUS, body);
    expect((await post(lonelyA, headers)).status).toBe(200);
    expect((await post(lonelyB, headers)).status).toBe(200);
    expect((await post(lonelyB, headers)).status).toBe(401);
  });
});
