/**
 * The signed-in token: kept in sessionStorage (this tab only, gone when it closes), never in
 * localStorage or a cookie; the app sends it as a bearer header and in graphql-ws connection_init.
 * In development the sign-in screen gets tokens from the gateway's loopback-only /dev routes.
 */
import { clearAlertResume } from './alerts/resume.js';

const KEY = 'paygraph.token';

export function storedToken(): string | null {
  return sessionStorage.getItem(KEY);
}
export function storeToken(token: string | null): void {
  // A new session (sign-in, sign-out) resumes no alert stream of the one before.
  if (token !== storedToken()) clearAlertResume();
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

export interface DevUser {
  handle: string;
  name: string;
}

/** The seeded users, or null when the gateway has no development sign-in (production). */
export async function devUsers(): Promise<DevUser[] | null> {
  try {
    const res = await fetch('/dev/users');
    if (!res.ok) return null;
    return ((await res.json()) as { users: DevUser[] }).users;
  } catch {
    return null;
  }
}

export async function devToken(handle: string): Promise<string> {
  const res = await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }) });
  if (!res.ok) throw new Error(`sign-in failed (${res.status})`);
  return ((await res.json()) as { token: string }).token;
}

/** A pasted token must at least look like a JWT before it is tried. */
export function looksLikeJwt(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(text.trim());
}
