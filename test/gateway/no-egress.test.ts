/**
 * No egress: a whole stack (gateway and five subgraphs) connects only to loopback while it starts,
 * serves queries, mutations and a subscription, and stops. @apollo/gateway would start an
 * OpenTelemetry exporter that sends usage data to Apollo and probes cloud metadata services
 * unless APOLLO_TELEMETRY_DISABLED is set: the project must set it itself, so the test unsets it
 * first. Every TCP connection attempt of this process is recorded by wrapping net.Socket#connect.
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { subscribe } from '../helpers/alerts.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const destinations: string[] = [];
const originalConnect = net.Socket.prototype.connect;
let stack: TestStack;

function destinationOf(args: unknown[]): string {
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (first && typeof first === 'object') {
    const o = first as { host?: string; path?: string; port?: number };
    return o.path ? `unix:${o.path}` : `${o.host ?? 'localhost'}:${o.port ?? ''}`;
  }
  if (typeof first === 'string' && Number.isNaN(Number(first))) return `unix:${first}`;
  return `${typeof args[1] === 'string' ? args[1] : 'localhost'}:${String(first)}`;
}

function isLoopback(destination: string): boolean {
  if (destination.startsWith('unix:')) return true;
  const host = destination.slice(0, destination.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

beforeAll(async () => {
  delete process.env.APOLLO_TELEMETRY_DISABLED;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    destinations.push(destinationOf(args));
    return (originalConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
  net.Socket.prototype.connect = originalConnect;
});

it('connects to nothing but loopback, and sets APOLLO_TELEMETRY_DISABLED itself', async () => {
  expect(process.env.APOLLO_TELEMETRY_DISABLED).toBe('true');
  const token = await stack.token('alice', 'payments');
  const sub = subscribe(stack, token, 'subscription { chargeAlertRaised { id riskScore } }');
  await expect.poll(() => stack.gateway.subscriptions.live, { timeout: 10_000 }).toBe(1);
  const balances = await stack.gql('{ me { accounts { id balance { current { amount currency } } } } }', undefined, token);
  expect(balances.errors).toBeUndefined();
  const accounts = (balances.data as { me: { accounts: { id: string }[] } }).me.accounts;
  const sent = await stack.gql(
    'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { userErrors { code } } }',
    { input: { fromAccountId: accounts[0]!.id, toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: randomUUID() } },
    token,
  );
  expect(sent.errors).toBeUndefined();
  await sub.dispose();
  expect(destinations.length).toBeGreaterThan(0); // the wrapper saw the stack's own calls
  expect(destinations.filter((d) => !isLoopback(d))).toEqual([]);
});
