/**
 * The gateway's own cost: requests/s on GET /v1/models, and the per-token cost of relaying a
 * stream as SSE, for Bamba Serve's gateway next to a bare Hono app on the same machine and in
 * the same process. The bare app answers /v1/models from memory and streams ready-made chunks;
 * ours reads the node registry from Redis and relays tokens from a Redis Stream.
 */
import type { AddressInfo } from 'node:net';
import { GREEDY } from '@bamba/gpu-node';
import { startDirectEngine } from '@bamba/tests/support/direct-engine';
import { MODEL_ID, startTestStack } from '@bamba/tests/support/stack';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';

const CLIENTS = 16;
const STREAM_TOKENS = 400;

async function requestsPerSecond(url: string, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < deadline) {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) done++;
    }
  }));
  return done / seconds;
}

async function streamMs(url: string, body: unknown): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return performance.now() - started;
}

export const gatewayCase: BenchCase = {
  name: 'gateway',
  description: 'requests/s on /v1/models and per-token SSE relay cost: our gateway vs a bare Hono app',
  async run({ quick }) {
    const seconds = quick ? 1 : 3;
    const bare = new Hono()
      .get('/v1/models', (c) => c.json({ object: 'list', data: [{ id: MODEL_ID, object: 'model', created: 0, owned_by: 'bamba-serve' }] }))
      .post('/v1/chat/completions', (c) => streamSSE(c, async (stream) => {
        for (let index = 0; index < STREAM_TOKENS; index++) {
          await stream.writeSSE({ data: JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }] }) });
        }
        await stream.writeSSE({ data: '[DONE]' });
      }));
    const bareServer = await new Promise<ReturnType<typeof serve>>((resolve) => { const server = serve({ fetch: bare.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(server)); });
    const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`;
    progress('starting a stack (tiny model) and an in-process engine for the generation-only baseline');
    const stack = await startTestStack({ nodeEnv: { BAMBA_CONTEXT_SIZE: '1024' } });
    const engine = await startDirectEngine();
    try {
      progress(`/v1/models for ${seconds} s each`);
      const oursRps = await requestsPerSecond(`${stack.url}/v1/models`, seconds);
      const bareRps = await requestsPerSecond(`${bareUrl}/v1/models`, seconds);
      const prompt = [{ role: 'user' as const, content: 'stream please' }];
      const body = { model: MODEL_ID, messages: prompt, max_tokens: STREAM_TOKENS, temperature: 0, stream: true };
      const served: number[] = [];
      const direct: number[] = [];
      const bareStream: number[] = [];
      for (let round_ = 0; round_ < (quick ? 2 : 5); round_++) {
        progress(`SSE relay round ${round_ + 1}`);
        served.push(await streamMs(`${stack.url}/v1/chat/completions`, body));
        const slot = engine.acquireSlot()!;
        const started = performance.now();
        for await (const _token of engine.generate(slot, engine.tokenizeChat(prompt), { ...GREEDY, maxTokens: STREAM_TOKENS })) { /* generation only */ }
        direct.push(performance.now() - started);
        await engine.releaseSlot(slot);
        bareStream.push(await streamMs(`${bareUrl}/v1/chat/completions`, body));
      }
      const oursPerToken = (median(served) - median(direct)) / STREAM_TOKENS;
      const barePerToken = median(bareStream) / STREAM_TOKENS;
      return {
        raw: { oursRps, bareRps, served, direct, bareStream },
        tables: [{
          title: 'Gateway',
          note: `${CLIENTS} concurrent clients for ${seconds} s on GET /v1/models (ours reads the node registry from Redis on every request). SSE relay: a ${STREAM_TOKENS}-token stream; our per-token cost is (served stream time − the same generation in-process) / tokens, the bare app's is its stream time / chunks. Medians.`,
          columns: ['gateway', '/v1/models requests/s', 'SSE relay per token (ms)'],
          rows: [
            ['Bamba Serve', round(oursRps, 0), round(oursPerToken, 3)],
            ['bare Hono', round(bareRps, 0), round(barePerToken, 3)],
            ['ratio ours/bare', round(oursRps / bareRps, 2), round(oursPerToken / barePerToken, 2)],
          ],
        }],
      };
    } finally {
      await engine.close();
      await stack.stop();
      await new Promise((resolve) => bareServer.close(resolve));
    }
  },
};
