/**
 * API-key authentication. Keys are compared by their SHA-256 digests with a constant-time
 * loop over every configured key, so neither the match position nor the key length leaks
 * through timing. Keys are never logged. Web Crypto only: runs on Node and in workerd.
 */
import { AuthenticationError } from '@bamba/shared';
import type { MiddlewareHandler } from 'hono';
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

export function apiKeyAuth(apiKeys: Map<string, string>): MiddlewareHandler<{ Variables: GatewayVariables }> {
  const digested = Promise.all([...apiKeys].map(async ([key, tenant]) => ({ digest: await digest(key), tenant })));
  return async (c, next) => {
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
