/**
 * The public audit endpoints' read budget (gateway/audit-routes.ts): each client address spends
 * one point per request and one per 100 entries, shared by the gateways; beyond it, 429 with
 * Retry-After. GraphQL is not charged for it.
 */
import { describe, expect, it } from 'vitest';
import { startTestStack } from '../helpers/stack.js';

describe('the public endpoints’ read budget', () => {
  it('charges each client address per request and per 100 entries, and answers 429 with Retry-After beyond it', async () => {
    const budgeted = await startTestStack({ limits: { auditReadsPerMinute: 12 } });
    try {
      const base = new URL(budgeted.url).origin;
      const size = Number((await (await fetch(`${base}/audit/checkpoint`)).text()).split('\n')[1]); // 1 point
      expect(size).toBeGreaterThan(0); // the seeds' records
      const entries = await fetch(`${base}/audit/entries?start=0&end=${size}`); // 1 + ceil(size / 100) points
      expect(size).toBeLessThanOrEqual(100); // so: 2 points
      expect(entries.status).toBe(200);
      // A bad parameter is refused before any relay, and costs nothing.
      expect((await fetch(`${base}/audit/proof/inclusion?index=x&size=1`)).status).toBe(400);
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await fetch(`${base}/audit/key`)).status);
      expect(statuses).toEqual([...Array(9).fill(200), 429]); // 12 - 3 points left
      const limited = await fetch(`${base}/audit/checkpoint`);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await limited.json()).toMatchObject({ error: expect.stringMatching(/too many audit log reads/), retryAfterSeconds: expect.any(Number) });
      // GraphQL is not charged for it.
      expect((await budgeted.gql('{ __typename }')).status).toBe(200);
    } finally {
      await budgeted.stop();
    }
  });
});
