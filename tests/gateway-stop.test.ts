/**
 * A gateway that stops: requests that finish within its drain are answered as usual; those still
 * open after it end with 503 `gateway_stopping` (a final error event on a stream), their jobs are
 * cancelled, and a session turn cut this way is not committed, so sending it again is safe.
 */
import { parseGatewayConfig, silentLogger, startGateway } from '@bamba/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSseRest, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => { stack = await startTestStack(); });
afterAll(async () => stack?.stop());

/** A second gateway on the same region, to stop while requests run through it. */
const twin = (drainMs: number) => startGateway(parseGatewayConfig({ ...stack.gatewayEnv, PORT: '0', BAMBA_DRAIN_TIMEOUT_MS: String(drainMs) }), { logger: silentLogger });
const chat = (url: string, body: Record<string, unknown>) => fetch(`${url}/v1/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID, temperature: 0, ...body }),
});
const idle = () => stack.waitFor('every slot free again', async () => ((await stack.nodeStatuses())[0]?.busySlots === 0 ? true : undefined));

describe('a gateway that stops', () => {
  it('answers what finishes within the drain', async () => {
    const gateway = await twin(5_000);
    const streamsBefore = new Set(await stack.streamKeys());
    const answer = chat(gateway.url, { messages: [{ role: 'user', content: 'quick' }], max_tokens: 200 });
    // Its token stream exists once a node started it (a short run may come and go between two node heartbeats).
    await stack.waitFor('the request to run', async () => ((await stack.streamKeys()).some((key) => !streamsBefore.has(key)) ? true : undefined));
    const stopped = gateway.close();
    const response = await answer;
    expect(response.status).toBe(200);
    expect(response.headers.get('connection')).toBe('close'); // draining: the client reconnects elsewhere
    expect(((await response.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBeGreaterThan(0);
    await stopped;
    await expect(chat(gateway.url, { messages: [{ role: 'user', content: 'late' }], max_tokens: 4 })).rejects.toThrow(); // no longer listening
  });

  it('ends what is still open after the drain with gateway_stopping, cancels those jobs and commits no cut session turn', async () => {
    const session = await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID });
    const sessionId = session.json.id as string;
    const gateway = await twin(0);
    const long = { messages: [{ role: 'user', content: 'a long answer' }], max_tokens: 900 };
    const stream = await chat(gateway.url, { ...long, stream: true });
    const turn = await chat(gateway.url, { ...long, session_id: sessionId, stream: true });
    const firstEvents = await Promise.all([stream, turn].map(async (response) => {
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      await reader.read(); // generating: headers and a first chunk are out
      return reader;
    }));
    const plain = chat(gateway.url, long); // not streamed: no answer yet when the gateway stops
    await stack.waitFor('the plain request to run', async () => ((await stack.nodeStatuses())[0]!.busySlots >= 3 ? true : undefined));
    await gateway.close();

    for (const reader of firstEvents) {
      const events = await readSseRest(reader);
      expect(events.at(-1)).not.toBe('[DONE]');
      expect(JSON.parse(events.at(-1)!)).toMatchObject({ error: { type: 'service_unavailable_error', code: 'gateway_stopping' } });
    }
    const refused = await plain;
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('gateway_stopping');

    await idle(); // the three jobs were cancelled, not left running
    const view = await fetch(`${stack.url}/v1/sessions/${sessionId}`);
    expect(((await view.json()) as { turns: number }).turns).toBe(0);
    const again = await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, session_id: sessionId, messages: long.messages, max_tokens: 4, temperature: 0 });
    expect(again.status).toBe(200);
  });

  it('fails a background response it still runs with gateway_stopping, and its readers on other gateways end there with the text that is recorded', async () => {
    const gateway = await twin(0);
    const created = await postJson(`${gateway.url}/v1/responses`, { model: MODEL_ID, temperature: 0, max_output_tokens: 900, input: 'a long answer', background: true });
    const responseId = created.json.id as string;
    await stack.waitFor('it to write text', async () => ((await stack.streamEvents(responseId)).some((event) => event.type === 'token-delta') ? true : undefined));
    // Followed through the other gateway, which stays up (following before the stop: its first events are out).
    const reader = (await fetch(`${stack.url}/v1/responses/${responseId}?stream=true`)).body!.getReader();
    const decoder = new TextDecoder();
    let body = decoder.decode((await reader.read()).value, { stream: true });
    await gateway.close();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) body += decoder.decode(chunk.value, { stream: true });
    const events = body.split('\n\n').filter((block) => block.startsWith('event: ')).map((block) => JSON.parse(block.split('\n')[1]!.slice('data: '.length)) as Record<string, any>);
    const text = events.filter((event) => event.type === 'response.output_text.delta').map((event) => event.delta as string).join('');
    expect(events.at(-1)).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'gateway_stopping' } } });
    const stored = (await (await fetch(`${stack.url}/v1/responses/${responseId}`)).json()) as Record<string, any>;
    expect(stored).toMatchObject({ status: 'failed', error: { code: 'gateway_stopping' } });
    expect(stored.output?.[0]?.content?.[0]?.text ?? '').toBe(text);
    await idle();
  });
});
