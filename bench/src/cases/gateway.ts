/**
 * The gateway's own cost: requests/s on GET /v1/models, and the per-token cost of relaying a
 * stream as SSE, for Bamba Serve's gateway next to a bare Hono app on the same machine and in
 * the same process. The bare app answers /v1/models from memory and streams ready-made chunks;
 * ours reads the node registry from Redis and relays tokens from a Redis Stream.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { GREEDY } from '@bamba/gpu-node';
import { startDirectEngine } from '@bamba/tests/support/direct-engine';
import { MODEL_ID, startTestStack, type TestStack } from '@bamba/tests/support/stack';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';

const CLIENTS = 16;
const STREAM_TOKENS = 400;
const MANY_STREAMS = 1000;
const MANY_STREAM_TOKENS = 32;

/** CPU milliseconds a process has used (user + system), from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 10 ms
}

/** Redis connections the gateway holds now (they are named bamba:gateway and bamba:relay:…). */
async function gatewayConnections(stack: TestStack): Promise<number> {
  return ((await stack.redis.call('CLIENT', 'LIST')) as string).split('\n').filter((line) => / name=bamba:(gateway|relay:\S+) /.test(`${line} `)).length;
}

/**
 * 1,000 streaming requests open at once through one gateway process (two gpu-nodes on tiny,
 * 16 slots each, so most wait queued with their stream already open): the gateway's Redis
 * connections, its CPU per relayed token, and how long the end of a stream took from the
 * gpu-node's XADD to the client.
 */
async function manyStreams(quick: boolean): Promise<{ streams: number; connections: number; cpuMsPer1000Tokens: number; relayMsPerToken: number; endLatencyMs: number; wallSeconds: number }> {
  const streams = quick ? 200 : MANY_STREAMS;
  const stack = await startTestStack({
    gpuNodes: 2,
    gatewayProcess: true,
    nodeEnv: { BAMBA_SLOTS: '16', BAMBA_CONTEXT_SIZE: '256', BAMBA_PREFIX_CACHE: 'false' },
    gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: String(streams * 2), BAMBA_REQUEST_DEADLINE_MS: '600000' },
  });
  try {
    const gatewayPid = stack.gatewayPid!;
    let sampling = true;
    let connections = 0;
    const sampler = (async () => {
      while (sampling) {
        connections = Math.max(connections, await gatewayConnections(stack));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const cpuBefore = cpuMs(gatewayPid);
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: streams }, async (_, index) => {
      const response = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: `stream ${index}` }], max_tokens: MANY_STREAM_TOKENS, temperature: 0, stream: true }),
      });
      const text = await response.text();
      const doneAtMs = Date.now();
      return { id: /"id":"([^"]+)"/.exec(text)?.[1] ?? '', tokens: text.includes('[DONE]') ? MANY_STREAM_TOKENS : 0, doneAtMs };
    }));
    const wallSeconds = (performance.now() - started) / 1000;
    const cpuUsed = cpuMs(gatewayPid) - cpuBefore;
    sampling = false;
    await sampler;
    const tokens = results.reduce((sum, result) => sum + result.tokens, 0);
    if (tokens !== streams * MANY_STREAM_TOKENS) throw new Error(`only ${tokens / MANY_STREAM_TOKENS} of ${streams} streams completed`);
    // The end event's stream entry id is the Redis clock (ms) when the gpu-node wrote it.
    const streamKeys = await stack.streamKeys();
    const latencies: number[] = [];
    for (const result of results.slice(0, 200)) {
      const key = streamKeys.find((candidate) => candidate.endsWith(`:stream:${result.id}`));
      if (!key) continue;
      const [last] = await stack.redis.xrevrange(key, '+', '-', 'COUNT', 1);
      latencies.push(result.doneAtMs - Number(last![0].split('-')[0]));
    }
    return { streams, connections, cpuMsPer1000Tokens: (cpuUsed / tokens) * 1000, relayMsPerToken: cpuUsed / tokens, endLatencyMs: median(latencies), wallSeconds };
  } finally {
    await stack.stop();
  }
}

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
      progress(`${quick ? 200 : MANY_STREAMS} concurrent streams through one gateway process`);
      const many = await manyStreams(quick);
      return {
        raw: { oursRps, bareRps, served, direct, bareStream, many },
        tables: [{
          title: 'Gateway',
          note: `${CLIENTS} concurrent clients for ${seconds} s on GET /v1/models (ours reads the node registry from Redis on every request). SSE relay: a ${STREAM_TOKENS}-token stream; our per-token cost is (served stream time − the same generation in-process) / tokens, the bare app's is its stream time / chunks. Medians.`,
          columns: ['gateway', '/v1/models requests/s', 'SSE relay per token (ms)'],
          rows: [
            ['Bamba Serve', round(oursRps, 0), round(oursPerToken, 3)],
            ['bare Hono', round(bareRps, 0), round(barePerToken, 3)],
            ['ratio ours/bare', round(oursRps / bareRps, 2), round(oursPerToken / barePerToken, 2)],
          ],
        }, {
          title: `${many.streams} concurrent streams through one gateway`,
          note: `${many.streams} streaming chat requests of ${MANY_STREAM_TOKENS} tokens sent at once to one gateway process (two gpu-nodes on tiny with 16 slots each; requests wait queued with their stream open). Connections: the most Redis connections the gateway held during the run (CLIENT LIST). CPU: the gateway process's user + system time over the run per relayed token. End latency: from the gpu-node's XADD of the end event (the entry id's Redis clock) to the client's end of the stream, median of 200. Wall: ${round(many.wallSeconds, 1)} s.`,
          columns: ['streams', 'gateway Redis connections', 'gateway CPU ms per 1,000 relayed tokens', 'relay CPU ms per token', 'end-of-stream latency (ms)'],
          rows: [[many.streams, many.connections, round(many.cpuMsPer1000Tokens, 0), round(many.relayMsPerToken, 3), round(many.endLatencyMs, 1)]],
        }],
      };
    } finally {
      await engine.close();
      await stack.stop();
      await new Promise((resolve) => bareServer.close(resolve));
    }
  },
};
