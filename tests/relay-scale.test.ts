/**
 * 300 concurrent streaming requests through one gateway: every token stream is complete and
 * correct, and the gateway reads all of them over at most its configured pool of blocking Redis
 * connections (counted with CLIENT LIST while the streams are open). One slot per gpu-node keeps
 * every answer equal to the engine's own greedy output for its prompt.
 */
import type { Engine } from '@bamba/gpu-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { MODEL_ID, readSse, startTestStack, type TestStack } from './support/stack.js';

const STREAMS = 300;
const RELAY_CONNECTIONS = 4;
const TOKENS = 12;

let stack: TestStack;
let engine: Engine;
beforeAll(async () => {
  [stack, engine] = await Promise.all([
    startTestStack({
      gpuNodes: 2,
      nodeEnv: { BAMBA_SLOTS: '1', BAMBA_PREFIX_CACHE: 'false' },
      gatewayEnv: { BAMBA_QUEUE_MAX_WAITING: '1000', BAMBA_RELAY_CONNECTIONS: String(RELAY_CONNECTIONS) },
    }),
    startDirectEngine({ slots: 1 }),
  ]);
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

const promptFor = (index: number) => [{ role: 'user' as const, content: `Stream ${index} of many.` }];

/** Blocking relay connections the gateway holds now, from CLIENT LIST (they are named `bamba:relay:…`). */
async function relayConnections(): Promise<number> {
  return ((await stack.redis.call('CLIENT', 'LIST')) as string).split('\n').filter((line) => / name=bamba:relay:/.test(line)).length;
}

describe('the relay at scale', () => {
  it(`${STREAMS} concurrent streams complete and correct over ${RELAY_CONNECTIONS} blocking connections`, async () => {
    let sampling = true;
    let mostRelayConnections = 0;
    const sampler = (async () => {
      while (sampling) {
        mostRelayConnections = Math.max(mostRelayConnections, await relayConnections());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const streams = await Promise.all(Array.from({ length: STREAMS }, async (_, index) => {
      const response = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL_ID, messages: promptFor(index), max_tokens: TOKENS, temperature: 0, stream: true, stream_options: { include_usage: true } }),
      });
      expect(response.status).toBe(200);
      const events = await readSse(response);
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
      return { text: chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join(''), usage: chunks.at(-1).usage };
    }));
    sampling = false;
    await sampler;
    for (const [index, stream] of streams.entries()) {
      expect(stream.usage.completion_tokens).toBe(TOKENS);
      expect(stream.text).toBe(await directGreedy(engine, promptFor(index), TOKENS));
    }
    expect(mostRelayConnections).toBeGreaterThan(0);
    expect(mostRelayConnections).toBeLessThanOrEqual(RELAY_CONNECTIONS);
  });
});
