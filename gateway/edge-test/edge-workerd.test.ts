// The edge Worker in workerd: its entry reads the bindings, authenticates, validates, and
// answers for itself what needs no region; with every region down it says so (503) and never
// hangs. Requests are sent to the Worker's own fetch handler.
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

const KEY = { authorization: 'Bearer edge-test-key' };
const call = (path: string, init: RequestInit = {}) => exports.default.fetch(`http://edge.test${path}`, init);
const error = async (response: Response) => ((await response.json()) as { error: { type: string; code: string | null; message: string } }).error;

describe('edge in workerd', () => {
  it('answers health itself; not ready while no region can be reached', async () => {
    expect((await call('/healthz')).status).toBe(200);
    const ready = await call('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready' });
  });

  it('refuses a missing or wrong API key with 401', async () => {
    expect((await error(await call('/v1/models'))).type).toBe('authentication_error');
    expect((await call('/v1/models', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });

  it('refuses bad requests with OpenAI-shaped 400s before any region', async () => {
    const post = (path: string, body: string) => call(path, { method: 'POST', headers: { ...KEY, 'content-type': 'application/json' }, body });
    expect((await error(await post('/v1/chat/completions', '{"model":"tiny","messages":[]}'))).type).toBe('invalid_request_error');
    expect((await post('/v1/chat/completions', 'not json')).status).toBe(400);
    expect((await post('/v1/completions', '{"model":"tiny","prompt":"x","max_tokens":-1}')).status).toBe(400);
    expect((await post('/v1/sessions', '{"model":5}')).status).toBe(400);
    expect((await error(await post(`/v1/sessions/sess_us_${'a'.repeat(32)}/move`, '{"region":"mars"}'))).code).toBe('invalid_value');
    expect((await post('/v1/batches', '{"input_file_id":"file-x","endpoint":"/v1/embeddings","completion_window":"24h"}')).status).toBe(400);
    expect((await call('/v1/files', { method: 'POST', headers: { ...KEY, 'content-type': 'text/plain' }, body: 'x' })).status).toBe(400);
    expect((await call('/v1/nothing', { headers: KEY })).status).toBe(404);
  });

  it('refuses a body over the limit with 413, sent with a length or without (read to its end first)', async () => {
    const oversized = 'x'.repeat(2 * 1024 * 1024);
    const headers = { ...KEY, 'content-type': 'application/json' };
    expect((await error(await call('/v1/chat/completions', { method: 'POST', headers, body: oversized }))).code).toBe('request_too_large');
    const chunked = await call('/v1/chat/completions', { method: 'POST', headers, body: new Blob([oversized]).stream(), duplex: 'half' } as RequestInit);
    expect([chunked.status, (await error(chunked)).code, chunked.headers.get('connection')]).toEqual([413, 'request_too_large', null]);
  });

  it('says 404 for an id of a region it does not know, 503 when the home region cannot be reached', async () => {
    expect((await call(`/v1/sessions/sess_ap_${'a'.repeat(32)}`, { headers: KEY })).status).toBe(404);
    const down = await call('/v1/chat/completions', { method: 'POST', headers: { ...KEY, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }) });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('2');
    expect((await error(down)).code).toBe('region_unavailable');
    expect((await call('/v1/models', { headers: KEY })).status).toBe(503);
  });
});
