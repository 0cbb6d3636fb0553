/**
 * API-key authentication. Keys are compared by their SHA-256 digests with a constant-time
 * loop over every configured key, so neither the match position nor the key length leaks
 * through timing. Keys are never logged. Web Crypto only: runs on Node and in workerd.
 */
import { AuthenticationError, hasEdgeHeaders, verifyEdgeRequest } from '@bamba/shared';
import type { Context, MiddlewareHandler } from 'hono';
import type { GatewayVariables } from './gateway-env.js';

/** Tenant of requests when no keys are configured (loopback-only mode). */
export const LOCAL_TENANT = 'local';

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

function equalDigests(left: Uint8Array, right: Uint8Array): boolean {
  let difference = 0;
  for (let index = 0; index < left.length; index++) difference |= left[index]! ^ right[index]!;
  return difference === 0;
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? null;
}

/** Requests must carry `Authorization: Bearer <token>` (compared in constant time); none when `token` is null. */
export function bearerAuth(token: string | null): MiddlewareHandler {
  const expected = token === null ? null : digest(token);
  return async (c, next) => {
    if (expected === null) return next();
    const presented = bearerToken(c.req.header('authorization'));
    if (presented === null || !equalDigests(await expected, await digest(presented))) throw new AuthenticationError('missing or wrong bearer token for this endpoint');
    return next();
  };
}

/** The path and query a request was signed over. */
function signedPath(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

/**
 * The claims of an edge-signed request, or a 401. `internal`: a region-to-region call (empty
 * tenant), the only kind internal routes take and the one kind API routes refuse.
 */
async function edgeClaims(c: Context, edgeSecret: string | null, internal: boolean, nowMs: number) {
  if (edgeSecret === null) throw new AuthenticationError('this server takes no signed edge or region requests (x-bamba-edge-* headers)');
  const claims = await verifyEdgeRequest(edgeSecret, (name) => c.req.header(name), c.req.method, signedPath(c.req.url), nowMs);
  if ('refused' in claims) throw new AuthenticationError(claims.refused);
  if (internal !== (claims.tenant === '')) throw new AuthenticationError(internal ? 'internal routes take region-to-region calls only' : 'a region-to-region signature names no tenant');
  return claims;
}

/** Region-to-region calls only (`/internal/…`): signed with the shared secret, naming no tenant. */
export function internalAuth(edgeSecret: string | null, clock: { nowMs(): number }): MiddlewareHandler {
  return async (c, next) => {
    await edgeClaims(c, edgeSecret, true, clock.nowMs());
    return next();
  };
}

/**
 * A region's API: a request the edge signed acts for the tenant it names (a tenant header
 * without a valid signature is refused, never believed); any other request needs an API key.
 */
export function apiKeyAuth(apiKeys: Map<string, string>, edgeSecret: string | null = null, clock: { nowMs(): number } = { nowMs: () => Date.now() }): MiddlewareHandler<{ Variables: GatewayVariables }> {
  const digested = Promise.all([...apiKeys].map(async ([key, tenant]) => ({ digest: await digest(key), tenant })));
  return async (c, next) => {
    c.set('failover', false);
    if (hasEdgeHeaders((name) => c.req.header(name))) {
      const claims = await edgeClaims(c, edgeSecret, false, clock.nowMs());
      c.set('tenant', claims.tenant);
      c.set('failover', claims.failover);
      return next();
    }
    if (apiKeys.size === 0) {
      c.set('tenant', LOCAL_TENANT);
      return next();
    }
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw new AuthenticationError();
    const presented = await digest(token);
    let tenant: string | null = null;
    for (const candidate of await digested) {
      if (equalDigests(candidate.digest, presented)) tenant = candidate.tenant; // no early exit
    }
    if (tenant === null) throw new AuthenticationError('invalid API key');
    c.set('tenant', tenant);
    return next();
  };
}
