/**
 * Readiness over every subgraph's processes (a URL may list several, comma-separated): a subgraph
 * is `unreachable` when none of its processes answers /health within a second (the gateway is not
 * ready); a single process that does not while another does is listed as `degraded` (the data
 * sources fail over to the others).
 */
import { parseUrlList, type SubgraphName } from '../lib/config.js';
import { httpRequest } from '../lib/transport/http-client.js';

async function healthy(graphqlUrl: string): Promise<boolean> {
  try {
    const res = await httpRequest(graphqlUrl.replace(/\/graphql$/, '/health'), { method: 'GET', timeoutMs: 1_000 });
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}

export async function readiness(subgraphUrls: Readonly<Record<SubgraphName, string>>): Promise<{ unreachable: string[]; degraded: string[] }> {
  const unreachable: string[] = [];
  const degraded: string[] = [];
  await Promise.all(
    Object.entries(subgraphUrls).map(async ([name, list]) => {
      const urls = parseUrlList(list);
      const up = await Promise.all(urls.map(healthy));
      if (!up.some(Boolean)) unreachable.push(name);
      else urls.forEach((u, i) => (up[i] ? undefined : degraded.push(`${name} ${u}`)));
    }),
  );
  return { unreachable: unreachable.sort(), degraded: degraded.sort() };
}
