/**
 * The alerts service's background work, started after its HTTP server listens: the payments
 * event consumer (lease -> long-polled feed -> rules -> alerts -> bus), the freeze dispatcher, and
 * the graphql-ws endpoint that streams the bus to the gateway's subscription bridge. With
 * ServiceEnv.redisUrl the bus also spans the other alerts processes of the same database, its
 * messages signed with the alerts key (ServiceEnv.signer, bus.ts).
 */
import type http from 'node:http';
import type { DocumentNode, GraphQLSchema } from 'graphql';
import type { ServiceEnv } from '../definition.js';
import type { AlertsServices } from './services.js';
import { serveAlertSubscriptions } from './ws.js';

export async function startAlertWorkers(
  env: ServiceEnv,
  server: http.Server,
  services: AlertsServices,
  schema: GraphQLSchema,
  typeDefs: DocumentNode,
): Promise<() => Promise<void>> {
  const { bus, consumer, freezer } = services;
  // Subscribed to the other processes before anything is raised or streamed here.
  if (env.redisUrl) await bus.connectRedis(env.db, env.redisUrl, env.signer);
  const ws = serveAlertSubscriptions(server, { env, services, schema, typeDefs });
  consumer.start();
  freezer.start();
  return async () => {
    // Close the subscribers first (1001 Going Away), so the gateway's bridge starts reconnecting.
    await ws.dispose();
    // Aborts a pending long poll at once, then releases the lease for a standby worker.
    await consumer.stop();
    await freezer.stop();
    await bus.close();
  };
}
