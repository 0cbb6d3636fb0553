/**
 * Two gpu-nodes; the one running a request is SIGKILLed mid-generation. The request completes
 * on the other node (or ends with a clear error once tokens were already streamed), never
 * hangs, and later requests succeed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ gpuNodes: 2, nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096' } });
});
afterAll(async () => stack?.stop());

const request = (content: string, stream: boolean) => ({ model: MODEL_ID, messages: [{ role: 'user', content }], max_tokens: 2500, temperature: 0, stream });

async function killBusyNode(): Promise<string> {
  const busy = await stack.waitFor('a node to start the request', async () => (await stack.nodeStatuses()).find((status) => status.busySlots > 0));
  stack.nodes.get(busy.nodeId)!.kill('SIGKILL');
  stack.nodes.delete(busy.nodeId);
  return busy.nodeId;
}

describe('a gpu-node dies mid-generation', () => {
  it('a non-streaming request completes on the surviving node with the same answer', async () => {
    const pending = postJson(`${stack.url}/v1/chat/completions`, request('survive this', false));
    const killed = await killBusyNode();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.json.usage.completion_tokens).toBe(2500);
    // Greedy and deterministic: the retried run gives what an undisturbed run gives.
    const again = await postJson(`${stack.url}/v1/chat/completions`, request('survive this', false));
    expect(again.json.choices[0].message.content).toBe(response.json.choices[0].message.content);
    await stack.startNode(`${killed}-replacement`);
  });

  it('a streaming request that already sent tokens ends with a clear error event, never hangs', async () => {
    const response = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request('stream then die', true)) });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read(); // tokens are flowing
    await killBusyNode();
    const rest = await readSse(new Response(new ReadableStream({ pull: async (controller) => { const { done, value } = await reader.read(); if (done) controller.close(); else controller.enqueue(value); } })));
    const last = rest.at(-1)!;
    if (last === '[DONE]') {
      expect(rest.some((event) => event !== '[DONE]' && JSON.parse(event).choices?.[0]?.finish_reason === 'length')).toBe(true);
    } else {
      expect(JSON.parse(last).error).toMatchObject({ type: 'server_error', code: 'node_failed' });
    }
  });

  it('later requests succeed', async () => {
    for (let index = 0; index < 3; index++) {
      const response = await postJson(`${stack.url}/v1/chat/completions`, { ...request(`after ${index}`, false), max_tokens: 8 });
      expect(response.status).toBe(200);
    }
  });
});
