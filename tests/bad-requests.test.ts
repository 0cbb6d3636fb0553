/**
 * Client mistakes get the right status and an OpenAI-shaped error, change nothing in the queue,
 * and never stop the stack from serving the next good request.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, startTestStack, type TestStack } from './support/stack.js';

const KEY = 'sk-test-good-key';
const MAX_BODY_BYTES = 16 * 1024;
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ gatewayEnv: { BAMBA_API_KEYS: `${KEY}:tenant-a`, BAMBA_MAX_BODY_BYTES: String(MAX_BODY_BYTES) } });
});
afterAll(async () => stack?.stop());

const auth = { authorization: `Bearer ${KEY}` };
const good = { model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0 };
const chat = '/v1/chat/completions';
const completions = '/v1/completions';

interface Case { name: string; path?: string; body: unknown; headers?: Record<string, string>; status: number; type: string; code?: string; param?: string; message?: RegExp }
const cases: Case[] = [
  { name: 'invalid JSON', body: '{"model": ', status: 400, type: 'invalid_request_error', code: 'invalid_json' },
  { name: 'empty body', body: '', status: 400, type: 'invalid_request_error' },
  { name: 'JSON array body', body: [good], status: 400, type: 'invalid_request_error' },
  { name: 'missing model', body: { ...good, model: undefined }, status: 400, type: 'invalid_request_error', param: 'model', code: 'missing_required_parameter' },
  { name: 'model of the wrong type', body: { ...good, model: 7 }, status: 400, type: 'invalid_request_error', param: 'model', code: 'invalid_value' },
  { name: 'missing messages', body: { ...good, messages: undefined }, status: 400, type: 'invalid_request_error', param: 'messages' },
  { name: 'empty messages', body: { ...good, messages: [] }, status: 400, type: 'invalid_request_error', param: 'messages' },
  { name: 'more messages than allowed', body: { ...good, messages: Array.from({ length: 501 }, () => ({ role: 'user', content: 'x' })) }, status: 400, type: 'invalid_request_error', code: 'too_many_messages', param: 'messages' },
  { name: 'more messages than allowed, even malformed ones', body: { ...good, messages: Array.from({ length: 5000 }, () => 7) }, status: 400, type: 'invalid_request_error', code: 'too_many_messages' },
  { name: 'messages not an array', body: { ...good, messages: 'hi' }, status: 400, type: 'invalid_request_error', param: 'messages' },
  { name: 'message without content', body: { ...good, messages: [{ role: 'user' }] }, status: 400, type: 'invalid_request_error', param: 'messages[0].content' },
  { name: 'message without role', body: { ...good, messages: [{ content: 'hi' }] }, status: 400, type: 'invalid_request_error', code: 'missing_required_parameter', param: 'messages[0].role', message: /role is required/ },
  { name: 'unknown role', body: { ...good, messages: [{ role: 'wizard', content: 'hi' }] }, status: 400, type: 'invalid_request_error', param: 'messages[0].role' },
  { name: 'content of the wrong type', body: { ...good, messages: [{ role: 'user', content: 42 }] }, status: 400, type: 'invalid_request_error', param: 'messages[0].content' },
  { name: 'max_tokens 0', body: { ...good, max_tokens: 0 }, status: 400, type: 'invalid_request_error', param: 'max_tokens' },
  { name: 'max_tokens negative', body: { ...good, max_tokens: -5 }, status: 400, type: 'invalid_request_error', param: 'max_tokens' },
  { name: 'max_tokens not an integer', body: { ...good, max_tokens: 1.5 }, status: 400, type: 'invalid_request_error', param: 'max_tokens' },
  { name: 'max_tokens above the model limit', body: { ...good, max_tokens: 5000 }, status: 400, type: 'invalid_request_error', code: 'max_tokens_too_large' },
  { name: 'max_completion_tokens 0', body: { ...good, max_tokens: undefined, max_completion_tokens: 0 }, status: 400, type: 'invalid_request_error', param: 'max_completion_tokens' },
  { name: 'temperature above 2', body: { ...good, temperature: 3 }, status: 400, type: 'invalid_request_error', param: 'temperature', code: 'invalid_value', message: /^temperature: / },
  { name: 'max_tokens and max_completion_tokens that disagree', body: { ...good, max_completion_tokens: 5 }, status: 400, type: 'invalid_request_error', param: 'max_tokens', code: 'invalid_value' },
  { name: 'completions with an empty prompt', path: completions, body: { model: MODEL_ID, prompt: '', max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'prompt', code: 'invalid_value' },
  { name: 'min_p above 1', path: chat, body: { model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], min_p: 1.5 }, status: 400, type: 'invalid_request_error', param: 'min_p', message: /at most 1/ },
  { name: 'min_p of the wrong type', path: completions, body: { model: MODEL_ID, prompt: 'hi', min_p: 'high' }, status: 400, type: 'invalid_request_error', param: 'min_p', message: /min_p must be a number/ },
  { name: 'top_p of 0', body: { ...good, top_p: 0 }, status: 400, type: 'invalid_request_error', param: 'top_p' },
  { name: 'negative seed', body: { ...good, seed: -1 }, status: 400, type: 'invalid_request_error', param: 'seed' },
  { name: 'n = 0', body: { ...good, n: 0 }, status: 400, type: 'invalid_request_error', param: 'n', message: /at least 1/ },
  { name: 'n above the most choices', body: { ...good, n: 9 }, status: 400, type: 'invalid_request_error', param: 'n', message: /at most 8/ },
  { name: 'n not a whole number', body: { ...good, n: 1.5 }, status: 400, type: 'invalid_request_error', param: 'n' },
  { name: 'n of the wrong type', path: completions, body: { model: MODEL_ID, prompt: 'hi', max_tokens: 2, n: 'two' }, status: 400, type: 'invalid_request_error', param: 'n', message: /n must be a number/ },
  { name: 'n > 1 on a session turn', body: { ...good, n: 2, session_id: 'sess-any' }, status: 400, type: 'invalid_request_error', param: 'n', code: 'unsupported_value', message: /session turn has one answer/ },
  { name: 'five stop strings', body: { ...good, stop: ['a', 'b', 'c', 'd', 'e'] }, status: 400, type: 'invalid_request_error', param: 'stop', message: /at most 4/ },
  { name: 'max_tokens beyond 2^53', body: { ...good, max_tokens: 1e300 }, status: 400, type: 'invalid_request_error', code: 'max_tokens_too_large' },
  { name: 'metadata key too long', path: '/v1/sessions', body: { model: MODEL_ID, metadata: { ['k'.repeat(65)]: 'v' } }, status: 400, type: 'invalid_request_error', message: /keys hold at most 64/ },
  { name: 'stream not a boolean', body: { ...good, stream: 'yes' }, status: 400, type: 'invalid_request_error', param: 'stream', code: 'invalid_value' },
  { name: 'tools other than functions', body: { ...good, tools: [{ type: 'web_search' }] }, status: 400, type: 'invalid_request_error', param: 'tools[0].type' },
  { name: 'functions (deprecated)', body: { ...good, functions: [{ name: 'f' }] }, status: 400, type: 'invalid_request_error', param: 'functions' },
  { name: 'logprobs as a number on chat', body: { ...good, logprobs: 2 }, status: 400, type: 'invalid_request_error', param: 'logprobs', message: /true or false/ },
  { name: 'logprobs above 5 on completions', path: completions, body: { model: MODEL_ID, prompt: 'x', logprobs: 6 }, status: 400, type: 'invalid_request_error', param: 'logprobs', message: /at most 5/ },
  { name: 'logprobs as a boolean on completions', path: completions, body: { model: MODEL_ID, prompt: 'x', logprobs: true }, status: 400, type: 'invalid_request_error', param: 'logprobs', message: /how many alternatives/ },
  { name: 'an unknown response_format', body: { ...good, response_format: { type: 'xml' } }, status: 400, type: 'invalid_request_error', param: 'response_format.type', message: /text, json_object or json_schema/ },
  { name: 'a schema keyword the grammar cannot enforce', body: { ...good, response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { code: { type: 'string', pattern: '^[a-z]+$' } } } } } }, status: 400, type: 'invalid_request_error', param: 'response_format.json_schema.schema.properties.code.pattern', message: /'pattern' is not supported/ },
  { name: 'top_logprobs without logprobs', body: { ...good, top_logprobs: 2 }, status: 400, type: 'invalid_request_error', param: 'top_logprobs', code: 'invalid_value', message: /needs logprobs: true/ },
  { name: 'top_logprobs above 20', body: { ...good, logprobs: true, top_logprobs: 21 }, status: 400, type: 'invalid_request_error', param: 'top_logprobs', message: /at most 20/ },
  { name: 'audio output', body: { ...good, modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'mp3' } }, status: 400, type: 'invalid_request_error', param: 'audio', code: 'unsupported_parameter' },
  { name: 'an audio modality', body: { ...good, modalities: ['audio'] }, status: 400, type: 'invalid_request_error', param: 'modalities', code: 'unsupported_value' },
  { name: 'predicted outputs', body: { ...good, prediction: { type: 'content', content: 'x' } }, status: 400, type: 'invalid_request_error', param: 'prediction', code: 'unsupported_parameter' },
  { name: 'web search', body: { ...good, web_search_options: {} }, status: 400, type: 'invalid_request_error', param: 'web_search_options', code: 'unsupported_parameter' },
  { name: 'reasoning_effort', body: { ...good, reasoning_effort: 'low' }, status: 400, type: 'invalid_request_error', param: 'reasoning_effort', code: 'unsupported_parameter' },
  { name: 'responses with user of the wrong type', path: '/v1/responses', body: { model: MODEL_ID, input: 'x', user: 5 }, status: 400, type: 'invalid_request_error', param: 'user' },
  { name: 'unknown model', body: { ...good, model: 'gpt-17' }, status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  { name: 'body over the limit', body: { ...good, messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY_BYTES) }] }, status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  { name: 'missing API key', body: good, headers: { authorization: '' }, status: 401, type: 'authentication_error' },
  { name: 'wrong API key', body: good, headers: { authorization: 'Bearer sk-test-wrong' }, status: 401, type: 'authentication_error' },
  { name: 'malformed Authorization header', body: good, headers: { authorization: KEY }, status: 401, type: 'authentication_error' },
  { name: 'completions without prompt', path: completions, body: { model: MODEL_ID, max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'prompt' },
  { name: 'completions with an empty prompt among several', path: completions, body: { model: MODEL_ID, prompt: ['a', ''], max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'prompt[1]', code: 'invalid_value' },
  { name: 'completions with an empty prompt array', path: completions, body: { model: MODEL_ID, prompt: [], max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'prompt', message: /at least one string/ },
  { name: 'completions with 65 prompts', path: completions, body: { model: MODEL_ID, prompt: Array.from({ length: 65 }, () => 'a'), max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'prompt', message: /at most 64/ },
  { name: 'completions asking for more than 64 answers (prompts × n)', path: completions, body: { model: MODEL_ID, prompt: Array.from({ length: 9 }, () => 'a'), n: 8, max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'n', message: /72 answers/ },
  { name: 'completions with token ids for a prompt', path: completions, body: { model: MODEL_ID, prompt: [1, 2, 3], max_tokens: 4 }, status: 400, type: 'invalid_request_error', param: 'prompt', message: /token ids are not accepted/ },
  { name: 'completions with a session', path: completions, body: { model: MODEL_ID, prompt: 'a', session_id: 'sess_any' }, status: 400, type: 'invalid_request_error', param: 'session_id', code: 'unsupported_parameter' },
  { name: 'completions with echo and logprobs', path: completions, body: { model: MODEL_ID, prompt: 'a', echo: true, logprobs: 0 }, status: 400, type: 'invalid_request_error', param: 'echo', code: 'unsupported_parameter', message: /prompt's log probabilities/ },
  { name: 'completions with best_of = 2', path: completions, body: { model: MODEL_ID, prompt: 'a', best_of: 2 }, status: 400, type: 'invalid_request_error', param: 'best_of', code: 'unsupported_value' },
  { name: 'presence_penalty above 2', body: { ...good, presence_penalty: 2.5 }, status: 400, type: 'invalid_request_error', param: 'presence_penalty', message: /at most 2/ },
  { name: 'frequency_penalty of the wrong type', body: { ...good, frequency_penalty: 'lots' }, status: 400, type: 'invalid_request_error', param: 'frequency_penalty', message: /must be a number/ },
  { name: 'logit_bias keyed by text', body: { ...good, logit_bias: { hello: 5 } }, status: 400, type: 'invalid_request_error', param: 'logit_bias.hello', message: /token ids/ },
  { name: 'logit_bias value beyond 100', body: { ...good, logit_bias: { '70': 101 } }, status: 400, type: 'invalid_request_error', param: 'logit_bias.70', message: /at most 100/ },
  { name: 'logit_bias value not a number', body: { ...good, logit_bias: { '70': 'up' } }, status: 400, type: 'invalid_request_error', param: 'logit_bias.70', message: /must be numbers/ },
  { name: 'logit_bias naming too many tokens', body: { ...good, logit_bias: Object.fromEntries(Array.from({ length: 1025 }, (_, index) => [String(index), 1])) }, status: 400, type: 'invalid_request_error', param: 'logit_bias', message: /at most 1024/ },
  { name: 'stream_options without stream', body: { ...good, stream_options: { include_usage: true } }, status: 400, type: 'invalid_request_error', param: 'stream_options' },
  { name: 'unknown route', path: '/v1/nothing-here', body: good, status: 404, type: 'invalid_request_error', code: 'unknown_url' },
  { name: 'turn of a session that does not exist', body: { ...good, session_id: 'sess_nope' }, status: 404, type: 'invalid_request_error', code: 'session_not_found' },
  { name: 'session_id with odd characters', body: { ...good, session_id: '../../etc' }, status: 400, type: 'invalid_request_error', param: 'session_id' },
  { name: 'system message in a session turn', body: { ...good, session_id: 'sess_any', messages: [{ role: 'system', content: 'new rules' }] }, status: 400, type: 'invalid_request_error', param: 'messages' },
  { name: 'session without a model', path: '/v1/sessions', body: { system: 'x' }, status: 400, type: 'invalid_request_error', param: 'model' },
  { name: 'session for an unknown model', path: '/v1/sessions', body: { model: 'gpt-17' }, status: 404, type: 'invalid_request_error', code: 'model_not_found', message: /available: bamba-tiny/ },
  { name: 'session metadata of the wrong type', path: '/v1/sessions', body: { model: MODEL_ID, metadata: { a: 1 } }, status: 400, type: 'invalid_request_error' },
];

/** A chat request over a given agent: its status, `Connection` header and whether the agent reused a socket for it. */
function send(agent: http.Agent, body: string, { chunked = false } = {}): Promise<{ status: number; connection: string | undefined; reusedSocket: boolean }> {
  const length = chunked ? {} : { 'content-length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const request = http.request(`${stack.url}${chat}`, { method: 'POST', agent, headers: { ...auth, 'content-type': 'application/json', ...length } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, reusedSocket: request.reusedSocket }));
    });
    request.on('error', reject);
    if (chunked) for (let offset = 0; offset < body.length; offset += 64 * 1024) request.write(body.slice(offset, offset + 64 * 1024));
    request.end(chunked ? undefined : body);
  });
}

async function jobCounts(): Promise<number> {
  const keys = await stack.redis.keys(`${stack.keys.bullPrefix}:${stack.keys.generationQueue}:*`);
  const jobKeys = keys.filter((key) => /:[^:]*-[0-9a-f]{32}$/.test(key));
  return jobKeys.length;
}

describe('bad requests', () => {
  for (const badCase of cases) {
    it(`${badCase.name} → ${badCase.status} ${badCase.type}`, async () => {
      const jobsBefore = await jobCounts();
      const response = await postJson(`${stack.url}${badCase.path ?? chat}`, badCase.body, { ...auth, ...badCase.headers });
      expect(response.status).toBe(badCase.status);
      expect(response.json).toEqual({ error: { message: expect.any(String), type: badCase.type, param: expect.toSatisfy((value) => value === null || typeof value === 'string'), code: expect.toSatisfy((value) => value === null || typeof value === 'string') } });
      expect(response.json.error.message.length).toBeGreaterThan(5);
      if (badCase.code) expect(response.json.error.code).toBe(badCase.code);
      if (badCase.param) expect(response.json.error.param).toBe(badCase.param);
      if (badCase.message) expect(response.json.error.message).toMatch(badCase.message);
      // Refused by a generation route (past auth and the body limit): the answer has its request id.
      const path = badCase.path ?? chat;
      if ((path === chat || path === completions) && badCase.status !== 401 && badCase.status !== 413) {
        expect(response.headers.get('x-request-id')).toMatch(path === chat ? /^chatcmpl-[0-9a-f]{32}$/ : /^cmpl-[0-9a-f]{32}$/);
      } else {
        expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/); // every other answer has one too
      }
      expect(await jobCounts()).toBe(jobsBefore); // refused before anything was queued
    });
  }

  it('a prompt longer than the context is refused by the node as a 400, streaming or not', async () => {
    const tooLong = { ...good, messages: [{ role: 'user', content: 'y'.repeat(1500) }] };
    for (const stream of [false, true]) {
      const response = await postJson(`${stack.url}${chat}`, { ...tooLong, stream }, auth);
      expect(response.status).toBe(400);
      expect(response.json.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded' });
    }
  });

  it('an explicit max_tokens that the prompt leaves no room for is a 400 naming both counts; without max_tokens the same prompt is answered up to the context', async () => {
    const long = { ...good, messages: [{ role: 'user', content: 'y'.repeat(900) }] };
    for (const stream of [false, true]) {
      const refused = await postJson(`${stack.url}${chat}`, { ...long, max_tokens: 500, stream }, auth);
      expect(refused.status).toBe(400);
      expect(refused.json.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages', message: expect.stringMatching(/you requested \d+ tokens \(\d+ in the messages, 500 in the completion\)/) });
    }
    const capped = await postJson(`${stack.url}${chat}`, { ...long, max_tokens: undefined }, auth);
    expect(capped.status).toBe(200);
    expect(capped.json.choices[0].finish_reason).toBe('length');
    expect(capped.json.usage.prompt_tokens + capped.json.usage.completion_tokens).toBe(1024);
  });

  it('a logit_bias token the model does not have is refused by the node as a 400', async () => {
    const response = await postJson(`${stack.url}${chat}`, { ...good, logit_bias: { '999999': 5 } }, auth);
    expect(response.status).toBe(400);
    expect(response.json.error).toMatchObject({ type: 'invalid_request_error', param: 'logit_bias', code: 'invalid_value', message: expect.stringContaining('999999') });
  });

  it('a body over the limit is read to its end, so every client reads its 413 (not a broken connection) and a kept-alive connection serves on', async () => {
    // 128 times the limit, 8 at a time: answered at once and closed, about 1 in 12 of these
    // ended in EPIPE or ECONNRESET for Node's fetch.
    const oversized = JSON.stringify({ ...good, messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY_BYTES * 128) }] });
    const outcomes: string[] = [];
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let round = 0; round < 5; round += 1) {
        const outcome = await fetch(`${stack.url}${chat}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: oversized })
          .then(async (response) => `${response.status} ${((await response.json()) as { error: { code: string } }).error.code}`)
          .catch((error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.message);
        outcomes.push(outcome);
      }
    }));
    expect(outcomes.filter((outcome) => outcome !== '413 request_too_large')).toEqual([]);
    // Refused by its key before the body was looked at: the same.
    const unauthenticated = await fetch(`${stack.url}${chat}`, { method: 'POST', headers: { authorization: 'Bearer sk-wrong', 'content-type': 'application/json' }, body: oversized });
    expect(unauthenticated.status).toBe(401);
    // The connection stays open (no `Connection: close`): the next request on it is served.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const answers = [await send(agent, oversized), await send(agent, JSON.stringify(good)), await send(agent, oversized, { chunked: true }), await send(agent, JSON.stringify(good), { chunked: true })];
    agent.destroy();
    // Sent without a length (chunked), it is read past the limit to its end the same way (and one within it is served).
    expect(answers.map(({ status, connection, reusedSocket }) => `${status} ${connection} ${reusedSocket}`)).toEqual(['413 keep-alive false', '200 keep-alive true', '413 keep-alive true', '200 keep-alive true']);
  });

  it("answers what Node's HTTP parser refuses (a URL longer than it reads, malformed HTTP) in OpenAI's error shape", async () => {
    const raw = (request: string) => new Promise<string>((resolve, reject) => {
      const { port } = new URL(stack.url);
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(request));
      let answer = '';
      socket.on('data', (chunk) => { answer += chunk.toString(); });
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
    const long = await raw(`GET /v1/sessions/sess_local_${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`);
    expect(long).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(long.slice(long.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { type: 'invalid_request_error', code: 'request_too_large' } });
    const malformed = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(malformed).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(malformed.slice(malformed.indexOf('\r\n\r\n') + 4)).error.type).toBe('invalid_request_error');
  });

  it('never leaks the API key in an error', async () => {
    const response = await postJson(`${stack.url}${chat}`, good, { authorization: 'Bearer sk-secret-attempt' });
    expect(response.text).not.toContain('sk-secret-attempt');
  });

  it('still serves a good request after all of that (and that one is queued)', async () => {
    const jobsBefore = await jobCounts();
    const response = await postJson(`${stack.url}${chat}`, good, auth);
    expect(response.status).toBe(200);
    expect(await jobCounts()).toBe(jobsBefore + 1); // the job-count probe above does see jobs
    expect(response.json.choices[0].message.content).toHaveLength(4);
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(200);
  });
});
