/**
 * API-key authentication. Keys are compared by their SHA-256 digests with a constant-time
 * loop over every configured key, so neither the match position nor the key length leaks
 * through timing. Keys are never logged. Web Crypto only: runs on Node and in workerd.
 */
import { AuthenticationError } from '@bamba/shared';
import type { MiddlewareHandler } from 'hono';

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

export type AuthVariables = { tenant: string };

export function apiKeyAuth(apiKeys: Map<string, string>): MiddlewareHandler<{ Variables: AuthVariables }> {
  const digested = Promise.all([...apiKeys].map(async ([key, tenant]) => ({ digest: await digest(key), tenant })));
  return async (c, next) => {
    if (apiKeys.size === 0) {
      c.set('tenant', LOCAL_TENANT);
      return next();
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new AuthenticationError();
    const presented = await digest(match[1]!);
    let tenant: string | null = null;
    for (const candidate of await digested) {
      if (equalDigests(candidate.digest, presented)) tenant = candidate.tenant; // no early exit
    }
    if (tenant === null) throw new AuthenticationError('invalid API key');
    c.set('tenant', tenant);
    return next();
  };
}
