/** Types of lib/egress-guard.mjs (plain JavaScript, so that any Node process can preload it). */
export declare const GUARD_MARK: string;
export declare const BLOCKED_MARK: string;
export declare const ACTIVE_MARK: string;
export declare const BLOCKED_CODE: 'EGRESS_BLOCKED';
export declare function isLoopbackHost(host: string): boolean;
export declare function destinationOf(args: unknown[]): { path: string } | { host: string; port: unknown };
/** This process's record: connections let through, and every destination refused (`host:port` or `unix:path`). */
export declare function egressGuard(): { allowed: number; blocked: string[] };
