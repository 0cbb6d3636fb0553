import { describe, expect, it } from 'vitest';
import { EDGE_HEADER, EDGE_SIGNATURE_WINDOW_MS, hasEdgeHeaders, signEdgeRequest, verifyEdgeRequest } from './edge-signature.js';

const SECRET = 's'.repeat(40);
const NOW = 1_800_000_000_000;
const verify = (headers: Record<string, string>, method = 'POST', path = '/v1/chat/completions?x=1', now = NOW) =>
  verifyEdgeRequest(SECRET, (name) => headers[name], method, path, now);

describe('edge request signatures', () => {
  it('carry the tenant and the failover flag of a signed request', async () => {
    const headers = await signEdgeRequest(SECRET, { tenant: 'tenant-a', failover: true }, 'POST', '/v1/chat/completions?x=1', NOW);
    expect(hasEdgeHeaders((name) => headers[name])).toBe(true);
    expect(await verify(headers)).toEqual({ tenant: 'tenant-a', failover: true });
    expect(await verify(headers, 'post', '/v1/chat/completions?x=1', NOW + EDGE_SIGNATURE_WINDOW_MS)).toEqual({ tenant: 'tenant-a', failover: true });
  });

  it('refuse anything changed, stale, incomplete or signed with another secret', async () => {
    const headers = await signEdgeRequest(SECRET, { tenant: 'tenant-a', failover: false }, 'POST', '/v1/chat/completions?x=1', NOW);
    const refused = async (promise: ReturnType<typeof verify>) => expect(await promise).toHaveProperty('refused');
    await refused(verify({ ...headers, [EDGE_HEADER.tenant]: 'tenant-b' }));
    await refused(verify({ ...headers, [EDGE_HEADER.failover]: '1' }));
    await refused(verify(headers, 'DELETE'));
    await refused(verify(headers, 'POST', '/v1/chat/completions?x=2'));
    await refused(verify(headers, 'POST', '/v1/chat/completions?x=1', NOW + EDGE_SIGNATURE_WINDOW_MS + 1));
    await refused(verify(headers, 'POST', '/v1/chat/completions?x=1', NOW - EDGE_SIGNATURE_WINDOW_MS - 1));
    await refused(verify({ ...headers, [EDGE_HEADER.signature]: headers[EDGE_HEADER.signature]!.slice(1) }));
    await refused(verify({ ...headers, [EDGE_HEADER.timestamp]: '1e12' }));
    await refused(verify({ [EDGE_HEADER.tenant]: 'tenant-a' }));
    const other = await signEdgeRequest('o'.repeat(40), { tenant: 'tenant-a', failover: false }, 'POST', '/v1/chat/completions?x=1', NOW);
    await refused(verify(other));
    expect(hasEdgeHeaders(() => undefined)).toBe(false);
  });
});
