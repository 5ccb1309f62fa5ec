/**
 * The egress guard (tests): refuses every network connection of this process outside loopback.
 * Plain JavaScript with no dependencies, so any Node process can preload it:
 *
 *   node --import ./lib/egress-guard.mjs ...        (runtime/cluster.ts does this with PAYGRAPH_EGRESS_GUARD=1)
 *   NODE_OPTIONS=--import=file:///.../lib/egress-guard.mjs ...
 *
 * and every test process loads it (test/helpers/setup.ts). Once loaded it also puts itself in this
 * process's NODE_OPTIONS, so the processes it spawns with its environment (a `tsx` CLI and the node
 * it starts, scripts run by tests) are guarded too.
 *
 * It wraps net.Socket.prototype.connect, which every TCP, TLS and unix-socket client in Node goes
 * through (net.connect, tls.connect, http, https, fetch/undici, pg, ioredis). Allowed: unix sockets,
 * 127.0.0.0/8, ::1 (and ::ffff:127.x.x.x), `localhost` (and only if it resolves to loopback), and
 * the host names or addresses listed in PAYGRAPH_EGRESS_ALLOW (comma-separated: a test PostgreSQL or
 * Redis that is not on loopback). Anything else is refused before the real connect runs: no socket
 * handle is created, no name is looked up, no packet leaves. The attempt is recorded, written to
 * stderr as one line starting with BLOCKED_MARK (plus the caller's stack), and the socket is
 * destroyed on the next tick with an error (code EGRESS_BLOCKED) naming the destination, the way a
 * refused connection fails, so callers see it through their usual error path.
 *
 * Not covered: UDP (dgram) and direct `dns` calls; code in worker threads that did not load it.
 */
import net from 'node:net';

/** Starts every line the guard writes to stderr. */
export const GUARD_MARK = '[paygraph egress-guard]';
/** Starts the stderr line of every refused connection. */
export const BLOCKED_MARK = `${GUARD_MARK} blocked`;
/** Starts the stderr line a guarded process writes when it loads the guard with PAYGRAPH_EGRESS_GUARD=1. */
export const ACTIVE_MARK = `${GUARD_MARK} active`;
/** The `code` of the error a refused connection fails with. */
export const BLOCKED_CODE = 'EGRESS_BLOCKED';

const STATE = Symbol.for('paygraph.egressGuard');

/** A host as compared: lower case, IPv6 without brackets. */
const bare = (host) =>
  String(host)
    .toLowerCase()
    .replace(/^\[|\]$/g, '');

/** Whether `host` (a name or an address, IPv6 with or without brackets) is loopback. */
export function isLoopbackHost(host) {
  let h = bare(host);
  if (h === 'localhost') return true;
  if (net.isIPv6(h)) h = bare(new URL(`http://[${h}]`).hostname); // canonical form
  if (h === '::1') return true;
  if (h.startsWith('::ffff:')) {
    const rest = h.slice('::ffff:'.length);
    return net.isIPv4(rest) ? rest.startsWith('127.') : /^7f[0-9a-f]{2}:/.test(rest);
  }
  return net.isIPv4(h) && h.startsWith('127.');
}

/** PAYGRAPH_EGRESS_ALLOW, read at each connection (a test may set it after the guard loaded). */
function allowList() {
  return (process.env.PAYGRAPH_EGRESS_ALLOW ?? '').split(',').map(bare).filter(Boolean);
}

/**
 * Where a call of net.Socket#connect(...args) goes: `{ path }` for a unix socket, else
 * `{ host, port }` (host defaults to localhost, as in Node). Accepts every form Node does:
 * (options[, cb]), (path[, cb]), (port[, host][, cb]), and the normalized [options, cb] array
 * net.connect passes.
 */
export function destinationOf(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === 'object') {
    if (first.path) return { path: String(first.path) };
    return { host: first.host || 'localhost', port: first.port };
  }
  if (typeof first === 'string' && !/^\s*\d+\s*$/.test(first)) return { path: first };
  return { host: typeof args[1] === 'string' && args[1] ? args[1] : 'localhost', port: first };
}

function label(d) {
  if ('path' in d) return `unix:${d.path}`;
  return `${net.isIPv6(d.host) ? `[${d.host}]` : d.host}:${d.port ?? ''}`;
}

/** The guard's record of this process: connections let through, and every destination refused. */
export function egressGuard() {
  return globalThis[STATE];
}

function install() {
  if (globalThis[STATE]) return;
  const state = { allowed: 0, blocked: [] };
  globalThis[STATE] = state;
  const originalConnect = net.Socket.prototype.connect;

  /** Records a refused connection, reports it on stderr, and returns the error the socket fails with. */
  const refuse = (destination, detail) => {
    state.blocked.push(destination);
    const err = new Error(
      `egress guard: refused a connection to ${destination}${detail}; only loopback (127.0.0.0/8, ::1, localhost), unix sockets and PAYGRAPH_EGRESS_ALLOW are allowed`,
    );
    err.code = BLOCKED_CODE;
    err.destination = destination;
    const caller = (new Error().stack ?? '').split('\n').slice(3, 13).join('\n');
    process.stderr.write(`${BLOCKED_MARK} ${destination}${detail} (pid ${process.pid})\n${caller}\n`);
    return err;
  };

  net.Socket.prototype.connect = function connect(...args) {
    const d = destinationOf(args);
    if ('path' in d || isLoopbackHost(d.host) || allowList().includes(bare(d.host))) {
      state.allowed += 1;
      if ('host' in d && bare(d.host) === 'localhost') {
        // A name: check what it resolves to. Node emits 'lookup' before it connects, and does not
        // connect a socket destroyed by a 'lookup' listener.
        this.prependListener('lookup', (err, address) => {
          if (!err && address && !isLoopbackHost(address)) this.destroy(refuse(label(d), ` (resolved to ${address})`));
        });
      }
      return originalConnect.apply(this, args);
    }
    // Never calls the real connect: no handle, no lookup, no packet. Fails the way a refused connection does.
    const err = refuse(label(d), '');
    process.nextTick(() => this.destroy(err));
    return this;
  };

  // Children spawned with this environment preload the guard too.
  const self = `--import=${import.meta.url}`;
  const options = process.env.NODE_OPTIONS ?? '';
  if (!options.includes(import.meta.url)) process.env.NODE_OPTIONS = options ? `${options} ${self}` : self;
  if (process.env.PAYGRAPH_EGRESS_GUARD === '1') process.stderr.write(`${ACTIVE_MARK} in pid ${process.pid}: connections outside loopback are refused\n`);
}

install();
