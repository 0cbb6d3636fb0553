// API keys from the KV binding (BAMBA_API_KEYS_KV, key `api-keys`) count alongside the secret's.
// The entry reads KV when it builds the app, on an isolate's first request; this file writes the
// keys before its first request, so a key only KV knows must get past auth (then 503: no region).
import { env, exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';

interface KvBinding { put(key: string, value: string): Promise<void> }

const call = (key: string) => exports.default.fetch('http://edge.test/v1/models', { headers: { authorization: `Bearer ${key}` } });

describe('API keys from KV in workerd', () => {
  beforeAll(async () => {
    await (env as unknown as { BAMBA_API_KEYS_KV: KvBinding }).BAMBA_API_KEYS_KV.put('api-keys', 'kv-only-key:tenant-kv\n');
  });

  it('takes a key that only KV holds, keeps the secret\'s keys, and still refuses unknown ones', async () => {
    const fromKv = await call('kv-only-key');
    expect(fromKv.status).toBe(503); // authenticated; every region is down in this project
    expect((await call('edge-test-key')).status).toBe(503);
    expect((await call('not-a-key')).status).toBe(401);
  });
});
