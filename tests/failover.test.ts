/**
 * Two gpu-nodes; the one running a request is SIGKILLed mid-generation (found from the
 * request's own stream, not by timing). A non-streaming request completes on the other node
 * with the same answer an undisturbed run gives; a streaming request that already sent tokens
 * ends with a clear node_failed error; one whose node dies twice is not run a third time; nothing
 * hangs and later requests succeed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, postJson, readSseRest, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ gpuNodes: 2, nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096' } });
});
afterAll(async () => stack?.stop());

const request = (content: string, stream: boolean) => ({ model: MODEL_ID, messages: [{ role: 'user', content }], max_tokens: 3000, temperature: 0, stream });

/** Read an SSE response until tokens reached the client (`marker` seen); its reader (for the rest) and its first id. */
async function readUntilTokens(response: Response, marker: string) {
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let head = '';
  while (!head.includes(marker)) head += decoder.decode((await reader.read()).value, { stream: true });
  return { reader, requestId: /"id":"([^"]+)"/.exec(head)![1]! };
}

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Start a streaming chat and read it until tokens reached the client. */
const streamUntilTokens = async (url: string, content: string) => readUntilTokens(await post(`${url}/v1/chat/completions`, request(content, true)), '"content"');

/** The last event of a Responses stream, parsed. */
const lastEvent = (events: string[]) => JSON.parse(events.at(-1)!) as { type: string; response: { status: string; error: { code: string } | null } };

/** Wait until the request's stream shows which node started it, and SIGKILL that node. */
async function killServingNode(requestId: () => Promise<string | undefined>, on: TestStack = stack): Promise<string> {
  const nodeId = await on.waitFor('the request to start on a node', async () => {
    const id = await requestId();
    const start = id ? (await on.streamEvents(id)).find((event) => event.type === 'generation-start') : undefined;
    return start?.type === 'generation-start' ? start.nodeId : undefined;
  });
  on.nodes.get(nodeId)!.kill('SIGKILL');
  on.nodes.delete(nodeId);
  return nodeId;
}

describe('a gpu-node dies mid-generation', () => {
  it('a non-streaming request completes on the surviving node with the same answer', async () => {
    const streamsBefore = new Set(await stack.streamKeys());
    const pending = postJson(`${stack.url}/v1/chat/completions`, request('survive this', false));
    const killed = await killServingNode(async () => (await stack.streamKeys()).find((key) => !streamsBefore.has(key))?.split(':stream:')[1]);
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.json.usage.completion_tokens).toBe(3000);
    const events = await stack.streamEvents(response.json.id);
    const starts = events.filter((event) => event.type === 'generation-start');
    expect(starts.map((event) => event.attempt)).toEqual([1, 2]); // the dead attempt, then the retry
    expect(starts[1]).toMatchObject({ nodeId: expect.not.stringMatching(killed) });
    // Greedy and deterministic: the retried run gives what an undisturbed run gives.
    const again = await postJson(`${stack.url}/v1/chat/completions`, request('survive this', false));
    expect(again.json.choices[0].message.content).toBe(response.json.choices[0].message.content);
    await stack.startNode(`${killed}-replacement`);
  });

  it('a streaming request that already sent tokens ends with a clear node_failed error, never hangs', async () => {
    const { reader, requestId } = await streamUntilTokens(stack.url, 'stream then die');
    await killServingNode(async () => requestId);
    const rest = await readSseRest(reader);
    expect(rest.at(-1)).not.toBe('[DONE]');
    expect(JSON.parse(rest.at(-1)!).error).toMatchObject({ type: 'server_error', code: 'node_failed' });
  });

  it('a non-streaming response completes on the surviving node; a reader of its stream that had its text is told node_failed, and the stored response says completed', async () => {
    // The test before killed a node: two again, so one survives this kill.
    if (stack.nodes.size < 2) await stack.startNode('node-for-responses');
    const body = { model: MODEL_ID, input: 'survive this too', max_output_tokens: 3000, temperature: 0 };
    const streamsBefore = new Set(await stack.streamKeys());
    const pending = postJson(`${stack.url}/v1/responses`, body);
    const responseId = await stack.waitFor('the response to be queued', async () => (await stack.streamKeys()).find((key) => !streamsBefore.has(key))?.split(':stream:')[1]);
    // A second reader follows its token stream (it is stored once it started on a node).
    const follower = await stack.waitFor('the stored response', async () => {
      const response = await fetch(`${stack.url}/v1/responses/${responseId}?stream=true`);
      if (response.status === 200) return response;
      await response.body?.cancel();
      return undefined;
    });
    const { reader } = await readUntilTokens(follower, 'response.output_text.delta');
    const killed = await killServingNode(async () => responseId);
    const followed = lastEvent(await readSseRest(reader));
    expect(followed).toMatchObject({ type: 'response.failed', response: { error: { code: 'node_failed' } } });
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ id: responseId, status: 'incomplete', usage: { output_tokens: 3000 } });
    const starts = (await stack.streamEvents(responseId)).filter((event) => event.type === 'generation-start');
    expect(starts.map((event) => event.attempt)).toEqual([1, 2]);
    // The answer is the retried attempt's alone, as an undisturbed run gives it; the reader did not record its failure.
    const again = await postJson(`${stack.url}/v1/responses`, { ...body, store: false });
    expect(response.json.output[0].content[0].text).toBe(again.json.output[0].content[0].text);
    const stored = await fetch(`${stack.url}/v1/responses/${responseId}`).then((reply) => reply.json());
    expect(stored).toMatchObject({ status: 'incomplete', output: [{ content: [{ text: again.json.output[0].content[0].text }] }] });
    await stack.startNode(`${killed}-replacement`);
  });

  it('a background response completes on the surviving node, and is stored with the retried answer', async () => {
    const body = { model: MODEL_ID, input: 'survive in the background', max_output_tokens: 3000, temperature: 0 };
    const queued = await postJson(`${stack.url}/v1/responses`, { ...body, background: true });
    expect(queued.json.status).toBe('queued');
    // Killed once the dead attempt had text: the stored answer must be the retried attempt's alone.
    await stack.waitFor('text from the first attempt', async () => ((await stack.streamEvents(queued.json.id)).some((event) => event.type === 'token-delta') ? true : undefined));
    const killed = await killServingNode(async () => queued.json.id as string);
    const stored = await stack.waitFor('the response to end', async () => {
      const response = await fetch(`${stack.url}/v1/responses/${queued.json.id}`).then((reply) => reply.json());
      return response.status === 'queued' || response.status === 'in_progress' ? undefined : response;
    }, 60_000);
    const again = await postJson(`${stack.url}/v1/responses`, { ...body, store: false });
    expect(stored).toMatchObject({ status: 'incomplete', output: [{ content: [{ text: again.json.output[0].content[0].text }] }] });
    await stack.startNode(`${killed}-replacement`);
  });

  it('a request whose node dies under it twice is not run a third time: it fails for good with repeated_node_failure', async () => {
    const streamsBefore = new Set(await stack.streamKeys());
    const pending = postJson(`${stack.url}/v1/chat/completions`, request('bring two nodes down', false));
    const requestId = await stack.waitFor('the request to be queued', async () => (await stack.streamKeys()).find((key) => !streamsBefore.has(key))?.split(':stream:')[1]);
    const first = await killServingNode(async () => requestId);
    await stack.startNode(`${first}-replacement`);
    // Its retry, on another node: killed too.
    const second = await stack.waitFor('the retry to start', async () => {
      const start = (await stack.streamEvents(requestId)).find((event) => event.type === 'generation-start' && event.attempt === 2);
      return start?.type === 'generation-start' ? start.nodeId : undefined;
    });
    stack.nodes.get(second)!.kill('SIGKILL');
    stack.nodes.delete(second);
    const response = await pending;
    expect([response.status, response.json.error.type, response.json.error.code]).toEqual([500, 'server_error', 'repeated_node_failure']);
    expect(response.json.error.message).toMatch(/stopped twice/);
    await stack.startNode(`${second}-replacement`);
  });

  it('later requests succeed', async () => {
    for (let index = 0; index < 3; index++) {
      const response = await postJson(`${stack.url}/v1/chat/completions`, { ...request(`after ${index}`, false), max_tokens: 8 });
      expect(response.status).toBe(200);
    }
  });
});

describe('a gpu-node dies mid-generation, long before its job lock would expire', () => {
  let slow: TestStack;
  beforeAll(async () => {
    // A lock as long as the defaults' (30 s) or longer: the job shows no sign of its dead node for a minute.
    slow = await startTestStack({ gpuNodes: 1, nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: '4096', BAMBA_LOCK_DURATION_MS: '60000', BAMBA_STALLED_INTERVAL_MS: '30000' } });
  });
  afterAll(async () => slow?.stop());

  it('tells a streaming client node_failed once the node misses its heartbeats, while its job still looks active', async () => {
    const { reader, requestId } = await streamUntilTokens(slow.url, 'stream then die quietly');
    const [nodeId, node] = [...slow.nodes.entries()][0]!;
    node.kill('SIGKILL');
    slow.nodes.delete(nodeId);
    const rest = await readSseRest(reader);
    expect(JSON.parse(rest.at(-1)!).error).toMatchObject({ type: 'server_error', code: 'node_failed' });
    // The gateway did not wait for the job's lock to expire: BullMQ still counts the job as running.
    const active = await slow.redis.lrange(`${slow.keys.bullPrefix}:${slow.keys.generationQueue}:active`, 0, -1);
    expect(active).toContain(requestId);
  });

  it('tells a reader of a stored response stream node_failed the same way', async () => {
    await slow.startNode('slow-second');
    const response = await post(`${slow.url}/v1/responses`, { model: MODEL_ID, input: 'background then die', max_output_tokens: 3000, temperature: 0, background: true, stream: true });
    const { reader, requestId } = await readUntilTokens(response, 'response.output_text.delta');
    await killServingNode(async () => requestId, slow);
    expect(lastEvent(await readSseRest(reader))).toMatchObject({ type: 'response.failed', response: { error: { code: 'node_failed' } } });
    const active = await slow.redis.lrange(`${slow.keys.bullPrefix}:${slow.keys.generationQueue}:active`, 0, -1);
    expect(active).toContain(requestId);
  });
});
