/**
 * The alerts service's background work, started after its HTTP server listens: the payments
 * event consumer (rules -> alerts -> bus), the freeze dispatcher, and the graphql-ws endpoint
 * that streams the bus to the gateway's subscription bridge.
 */
import type http from 'node:http';
import type { DocumentNode, GraphQLSchema } from 'graphql';
import type { ServiceEnv } from '../../lib/subgraph.js';
import { AlertBus, registerFreezeWaker } from './bus.js';
import { startConsumer } from './consumer.js';
import { startFreezeDispatcher } from './freezer.js';
import { serveAlertSubscriptions } from './ws.js';

export async function startAlertWorkers(env: ServiceEnv, server: http.Server, schema: GraphQLSchema, typeDefs: DocumentNode): Promise<() => Promise<void>> {
  const bus = new AlertBus();
  const ws = serveAlertSubscriptions(server, { env, bus, schema, typeDefs });
  const consumer = startConsumer(env, bus);
  const freezer = startFreezeDispatcher(env);
  const unregister = registerFreezeWaker(env.db, () => freezer.wake());
  consumer.start();
  freezer.start();
  return async () => {
    unregister();
    // Close the subscribers first (1001 Going Away), so the gateway's bridge starts reconnecting.
    await ws.dispose();
    await consumer.stop();
    await freezer.stop();
  };
}
