/**
 * The Responses and Conversations APIs with the official `openai` client, unmodified, against a
 * real stack: answers equal the engine's own greedy output for the same history, chains resume
 * from the parent's saved state (cached tokens grow), branches each equal their own replay, a
 * dropped background stream resumes without losing or repeating a character, and another
 * tenant sees nothing.
 */
import OpenAI from 'openai';
import type { Engine } from '@bamba/gpu-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directGreedy, startDirectEngine } from './support/direct-engine.js';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let engine: Engine;
let client: OpenAI;
let other: OpenAI;

beforeAll(async () => {
  [stack, engine] = await Promise.all([
    startTestStack({ gatewayEnv: { BAMBA_API_KEYS: 'key-a:tenant-a,key-b:tenant-b' } }),
    startDirectEngine(),
  ]);
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'key-a', maxRetries: 0 });
  other = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'key-b', maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

type Message = { role: 'system' | 'user' | 'assistant'; content: string };
const INSTRUCTIONS = 'You answer in one short sentence.';
const greedy = { model: MODEL_ID, temperature: 0, max_output_tokens: 24 } as const;

describe('responses', () => {
  it('create: output_text equals the engine on the same messages, usage in OpenAI shape', async () => {
    const response = await client.responses.create({ ...greedy, instructions: INSTRUCTIONS, input: 'Name a hybrid model.' });
    const expected = await directGreedy(engine, [{ role: 'system', content: INSTRUCTIONS }, { role: 'user', content: 'Name a hybrid model.' }], 24);
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_/);
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.output_text).toBe(expected);
    expect(response.status).toBe('incomplete'); // 24 tokens of a random model never reach an end of turn
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(response.usage).toMatchObject({ output_tokens: 24, input_tokens_details: { cached_tokens: 0 } });
    expect(response.output[0]).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: expected }] });
  });

  it('stream: the SDK accumulator gets the same answer, events numbered in order', async () => {
    const input = 'Stream me something.';
    const stream = client.responses.stream({ ...greedy, input });
    const types: string[] = [];
    const numbers: number[] = [];
    stream.on('event', (event) => { types.push(event.type); numbers.push(event.sequence_number); });
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(await directGreedy(engine, [{ role: 'user', content: input }], 24));
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types).toContain('response.output_text.delta');
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it('a chain of 4 by previous_response_id resumes from saved state; the last answer equals a replay of the history', async () => {
    const inputs = ['Hello there.', 'Tell me more.', 'And then?', 'Finish the story.'];
    const history: Message[] = [];
    let previous: string | undefined;
    const cached: number[] = [];
    const resumes: Array<string | null> = [];
    let last = '';
    for (const input of inputs) {
      const { data, response } = await client.responses.create({ ...greedy, instructions: INSTRUCTIONS, input, ...(previous ? { previous_response_id: previous } : {}) }).withResponse();
      resumes.push(response.headers.get('x-bamba-resume'));
      cached.push(data.usage!.input_tokens_details.cached_tokens);
      history.push({ role: 'user', content: input });
      last = data.output_text;
      history.push({ role: 'assistant', content: last });
      previous = data.id;
    }
    expect(resumes.slice(1)).toEqual(['snapshot', 'snapshot', 'snapshot']);
    expect(cached[0]).toBe(0);
    for (let index = 1; index < cached.length; index++) expect(cached[index]).toBeGreaterThan(cached[index - 1]!);
    const replayed = await directGreedy(engine, [{ role: 'system', content: INSTRUCTIONS }, ...history.slice(0, -1)], 24);
    expect(last).toBe(replayed);
  });

  it('two children of one parent branch from its state, each equal to a replay of its own history', async () => {
    const parent = await client.responses.create({ ...greedy, input: 'Pick a colour.' });
    const children = await Promise.all(['Why that one?', 'Pick another.'].map((input) => client.responses.create({ ...greedy, input, previous_response_id: parent.id })));
    for (const [index, input] of ['Why that one?', 'Pick another.'].entries()) {
      const child = children[index]!;
      expect(child.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
      expect(child.previous_response_id).toBe(parent.id);
      const replayed = await directGreedy(engine, [{ role: 'user', content: 'Pick a colour.' }, { role: 'assistant', content: parent.output_text }, { role: 'user', content: input }], 24);
      expect(child.output_text).toBe(replayed);
    }
  });

  it('instructions are not carried over: a child without them equals a replay without them', async () => {
    const parent = await client.responses.create({ ...greedy, instructions: INSTRUCTIONS, input: 'Say hi.' });
    const child = await client.responses.create({ ...greedy, input: 'Again.', previous_response_id: parent.id });
    expect(child.instructions).toBeNull();
    const replayed = await directGreedy(engine, [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: parent.output_text }, { role: 'user', content: 'Again.' }], 24);
    expect(child.output_text).toBe(replayed);
  });

  it('retrieve, input items, delete (then 404), store: false is not retrievable', async () => {
    const created = await client.responses.create({ ...greedy, input: [{ role: 'user', content: [{ type: 'input_text', text: 'First part. ' }, { type: 'input_text', text: 'Second part.' }] }], metadata: { run: 'retrieve' } });
    const retrieved = await client.responses.retrieve(created.id);
    expect(retrieved).toMatchObject({ id: created.id, status: created.status, metadata: { run: 'retrieve' } });
    expect(retrieved.output_text).toBe(created.output_text);
    // A sequence number is digits: not `1e30`, `0x10` or ` 5`.
    for (const bad of ['1e30', '0x10', ' 5', '5.0', '-1']) {
      const refused = await fetch(`${stack.url}/v1/responses/${created.id}?stream=true&starting_after=${encodeURIComponent(bad)}`, { headers: { authorization: 'Bearer key-a' } });
      expect(refused.status, bad).toBe(400);
      expect(((await refused.json()) as { error: { param: string } }).error.param, bad).toBe('starting_after');
    }
    const items = await client.responses.inputItems.list(created.id);
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'First part. Second part.' }] });
    const deleted: unknown = await client.responses.delete(created.id);
    expect(deleted).toEqual({ id: created.id, object: 'response.deleted', deleted: true });
    await expect(client.responses.retrieve(created.id)).rejects.toMatchObject({ status: 404 });

    const unstored = await client.responses.create({ ...greedy, input: 'Forget me.', store: false });
    expect(unstored.output_text.length).toBeGreaterThan(0);
    await expect(client.responses.retrieve(unstored.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.responses.create({ ...greedy, input: 'Continue.', previous_response_id: unstored.id })).rejects.toMatchObject({ status: 404, code: 'previous_response_not_found' });
  });

  it('background: queued at once, completes; a stream dropped mid-way resumes with every delta exactly once', async () => {
    const input = 'Write a long story.';
    const tokens = 200;
    const stream = await client.responses.create({ model: MODEL_ID, temperature: 0, max_output_tokens: tokens, input, background: true, stream: true });
    let responseId = '';
    let lastSeen = -1;
    let received = '';
    let deltasBeforeDrop = 0;
    for await (const event of stream) {
      if (event.type === 'response.created') {
        responseId = event.response.id;
        expect(event.response.status).toBe('queued');
      }
      lastSeen = event.sequence_number;
      if (event.type === 'response.output_text.delta') {
        received += event.delta;
        if (++deltasBeforeDrop === 2) break; // drop the connection mid-stream
      }
    }
    const receivedBeforeDrop = received;
    expect(responseId).toMatch(/^resp_/);
    const resumed = await client.responses.retrieve(responseId, { stream: true, starting_after: lastSeen });
    const resumedTypes: string[] = [];
    for await (const event of resumed) {
      resumedTypes.push(event.type);
      expect(event.sequence_number).toBeGreaterThan(lastSeen);
      if (event.type === 'response.output_text.delta') received += event.delta;
    }
    expect(resumedTypes.at(-1)).toBe('response.incomplete');
    const expected = await directGreedy(engine, [{ role: 'user', content: input }], tokens);
    expect(received).toBe(expected);
    const final = await stack.waitFor('the background response to be stored as ended', async () => {
      const response = await client.responses.retrieve(responseId);
      return response.status === 'in_progress' || response.status === 'queued' ? undefined : response;
    });
    expect(final.output_text).toBe(expected);
    // Again from the start, after it ended: rebuilt from the stored answer, the same events and numbers.
    let again = '';
    for await (const event of await client.responses.retrieve(responseId, { stream: true })) if (event.type === 'response.output_text.delta') again += event.delta;
    expect(again).toBe(expected);
    // The SDK's own resume replays everything and drops the events up to `starting_after` itself:
    // the replay's deltas must be the very events the dropped stream had, or text comes twice.
    const sdkResumed = client.responses.stream({ response_id: responseId, starting_after: lastSeen });
    let afterDrop = '';
    sdkResumed.on('response.output_text.delta', (event) => { afterDrop += event.delta; });
    expect((await sdkResumed.finalResponse()).output_text).toBe(expected);
    expect(receivedBeforeDrop + afterDrop).toBe(expected);
  });

  it('background: polling shows it finish; cancel stops a running one', async () => {
    const queued = await client.responses.create({ ...greedy, input: 'Poll me.', background: true });
    expect(queued.status).toBe('queued');
    const done = await stack.waitFor('the background response to finish', async () => {
      const response = await client.responses.retrieve(queued.id);
      return response.status === 'incomplete' || response.status === 'completed' ? response : undefined;
    });
    expect(done.output_text).toBe(await directGreedy(engine, [{ role: 'user', content: 'Poll me.' }], 24));

    const long = await client.responses.create({ model: MODEL_ID, max_output_tokens: 900, input: 'Go on forever.', background: true });
    const cancelled = await client.responses.cancel(long.id);
    expect(cancelled.status).toBe('cancelled');
    expect((await client.responses.retrieve(long.id)).status).toBe('cancelled');
    await expect(client.responses.cancel(done.id)).resolves.toMatchObject({ status: done.status }); // ended: unchanged
    const foreground = await client.responses.create({ ...greedy, input: 'Not cancellable.' });
    await expect(client.responses.cancel(foreground.id)).rejects.toMatchObject({ status: 400 });
  });

  it('background: queued while every slot is busy, in progress once a gpu-node runs it, as OpenAI shows it', async () => {
    const blockers = await Promise.all([1, 2, 3, 4].map((n) => client.responses.create({ model: MODEL_ID, max_output_tokens: 900, temperature: 0, input: `Blocker ${n}, talk on.`, background: true })));
    await stack.waitFor('every slot busy', async () => ((await stack.nodeStatuses())[0]?.busySlots === 4 ? true : undefined));
    const waiting = await client.responses.create({ ...greedy, input: 'Wait your turn.', background: true });
    await stack.waitFor('it to wait in the queue', async () => ((await stack.queueDepth()) >= 1 ? true : undefined));
    const whileWaiting = await client.responses.retrieve(waiting.id);
    // No blocker ended before that look (so no slot had come free for it).
    expect(await Promise.all(blockers.map(async (blocker) => (await client.responses.retrieve(blocker.id)).status))).toEqual(['in_progress', 'in_progress', 'in_progress', 'in_progress']);
    expect(whileWaiting.status).toBe('queued');
    for (const blocker of blockers) await client.responses.cancel(blocker.id);
    const ended = await stack.waitFor('the waiting response to run and end', async () => {
      const response = await client.responses.retrieve(waiting.id);
      return response.status === 'queued' || response.status === 'in_progress' ? undefined : response;
    });
    expect(ended.status).toBe('incomplete');
  });

  it('cancel keeps what a running response had written; delete stops one that runs', async () => {
    const startWriting = async (input: string) => {
      const response = await client.responses.create({ model: MODEL_ID, max_output_tokens: 900, temperature: 0, input, background: true });
      await stack.waitFor('the response to write text', async () => ((await stack.streamEvents(response.id)).some((event) => event.type === 'token-delta') ? true : undefined));
      return response.id;
    };
    const written = async (id: string) => (await stack.streamEvents(id)).map((event) => (event.type === 'token-delta' ? event.text : '')).join('');

    /** What a reader of a response's stream got: its text and its last event's response status. */
    const readToEnd = async (events: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) => {
      let text = '';
      let last: OpenAI.Responses.ResponseStreamEvent | null = null;
      for await (const event of events) {
        if (event.type === 'response.output_text.delta') text += event.delta;
        last = event;
      }
      return { text, status: last && 'response' in last ? last.response.status : null };
    };

    const cancelledId = await startWriting('Talk until cancelled.');
    // A reader following it when it is cancelled ends there, with the text that is recorded
    // (not at the response's deadline, as when the stream just stopped).
    const following = readToEnd(await client.responses.retrieve(cancelledId, { stream: true }));
    expect(await client.responses.cancel(cancelledId)).toMatchObject({ status: 'cancelled' });
    const cancelled = await client.responses.retrieve(cancelledId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.output_text).not.toBe('');
    expect((await written(cancelledId)).startsWith(cancelled.output_text)).toBe(true);
    // What it cost up to the cancel: its prompt, and the tokens behind the text it kept (and any held back).
    expect(cancelled.usage!.input_tokens).toBeGreaterThan(0);
    expect(cancelled.usage!.output_tokens).toBeGreaterThan(0);
    expect(cancelled.usage!.total_tokens).toBe(cancelled.usage!.input_tokens + cancelled.usage!.output_tokens);
    expect(await following).toEqual({ text: cancelled.output_text, status: 'cancelled' });
    expect(await readToEnd(await client.responses.retrieve(cancelledId, { stream: true }))).toEqual({ text: cancelled.output_text, status: 'cancelled' });

    // A foreground stream whose client hangs up is cancelled the same way, for its other readers too.
    const controller = new AbortController();
    const hungUp = await client.responses.create({ model: MODEL_ID, max_output_tokens: 900, temperature: 0, input: 'Talk until I hang up.', stream: true }, { signal: controller.signal });
    let hungUpId = '';
    for await (const event of hungUp) {
      if (event.type === 'response.created') hungUpId = event.response.id;
      if (event.type === 'response.output_text.delta') break;
    }
    const otherReader = readToEnd(await client.responses.retrieve(hungUpId, { stream: true }));
    controller.abort();
    const afterHangUp = await otherReader;
    expect(afterHangUp.status).toBe('cancelled');
    const recorded = await stack.waitFor('the hung-up response to be recorded', async () => {
      const response = await client.responses.retrieve(hungUpId);
      return response.status === 'in_progress' ? undefined : response;
    });
    expect([recorded.status, recorded.output_text]).toEqual(['cancelled', afterHangUp.text]);

    const deletedId = await startWriting('Talk until deleted.');
    await expect(client.responses.delete(deletedId)).resolves.toMatchObject({ deleted: true });
    await stack.waitFor('the gpu-node to stop the deleted response', async () => ((await stack.nodeStatuses()).every((node) => node.busySlots === 0) ? true : undefined));
    expect((await stack.streamEvents(deletedId)).some((event) => event.type === 'generation-end')).toBe(false);
  });

  it('refuses what it does not support, naming the field, and stores nothing', async () => {
    await expect(client.responses.create({ ...greedy, input: 'x', tools: [{ type: 'web_search' }] })).rejects.toMatchObject({ status: 400, param: 'tools[0].type' });
    await expect(client.responses.create({ ...greedy, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://example.invalid/x.png', detail: 'auto' }] }] })).rejects.toMatchObject({ status: 400, param: 'input[0].content[0].type' });
    await expect(client.responses.create({ ...greedy, input: 'x', reasoning: { effort: 'low' } })).rejects.toMatchObject({ status: 400, param: 'reasoning' });
    await expect(client.responses.create({ ...greedy, input: 'x', background: true, store: false })).rejects.toMatchObject({ status: 400, param: 'background' });
    await expect(client.responses.create({ model: 'no-such-model', input: 'x' })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(client.responses.create({ model: 'no-such-model', input: 'x', background: true })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    // Limits found past validation name the Responses API's fields, not Chat Completions'.
    await expect(client.responses.create({ ...greedy, input: 'x', max_output_tokens: 100_000 })).rejects.toMatchObject({ status: 400, param: 'max_output_tokens', code: 'max_tokens_too_large' });
    await expect(client.responses.create({ ...greedy, input: 'y'.repeat(1500) })).rejects.toMatchObject({ status: 400, param: 'input', code: 'context_length_exceeded' });
  });

  it('takes a request without input when instructions or a previous response give it something to answer, as OpenAI does', async () => {
    const alone = await client.responses.create({ ...greedy, instructions: INSTRUCTIONS });
    expect(alone).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, instructions: INSTRUCTIONS }); // answered up to its limit
    expect(alone.output_text.length).toBeGreaterThan(0);
    expect((await client.responses.inputItems.list(alone.id)).data).toEqual([]);
    const asked = await client.responses.create({ ...greedy, instructions: INSTRUCTIONS, input: 'Go on.' });
    const further = await client.responses.create({ ...greedy, previous_response_id: asked.id });
    expect(further.status).toBe('incomplete');
    // Its context is the earlier exchange (instructions are not carried over, as in OpenAI's API).
    expect(further.usage!.input_tokens).toBeGreaterThan(asked.usage!.output_tokens);
    // An empty list is no input: the same answer as none.
    expect((await client.responses.create({ ...greedy, instructions: INSTRUCTIONS, input: [] })).output_text).toBe(alone.output_text);
    await expect(client.responses.create({ ...greedy })).rejects.toMatchObject({ status: 400, param: 'input', code: 'missing_required_parameter' });
    await expect(client.responses.create({ ...greedy, input: [] })).rejects.toMatchObject({ status: 400, param: 'input', code: 'missing_required_parameter' });
    const conversation = await client.conversations.create({});
    await expect(client.responses.create({ ...greedy, conversation: conversation.id })).rejects.toMatchObject({ status: 400, param: 'input', code: 'missing_required_parameter' });
    await expect(client.responses.create({ ...greedy, conversation: conversation.id, input: [] })).rejects.toMatchObject({ status: 400, param: 'input', code: 'missing_required_parameter' });
  });

  it('creates a conversation from a request without a body, as OpenAI does (its body is all optional)', async () => {
    const created = await fetch(`${stack.url}/v1/conversations`, { method: 'POST', headers: { authorization: 'Bearer key-a' } });
    expect(created.status).toBe(200);
    const conversation = (await created.json()) as { id: string; object: string; metadata: Record<string, string> };
    expect(conversation).toMatchObject({ object: 'conversation', metadata: {} });
    expect((await client.conversations.items.list(conversation.id)).data).toEqual([]);
    const malformed = await fetch(`${stack.url}/v1/conversations`, { method: 'POST', headers: { authorization: 'Bearer key-a' }, body: '{"items":' });
    expect([malformed.status, ((await malformed.json()) as { error: { code: string } }).error.code]).toEqual([400, 'invalid_json']);
    expect((await fetch(`${stack.url}/v1/conversations`, { method: 'POST', headers: { authorization: 'Bearer key-a' }, body: 'null' })).status).toBe(400);
  });

  it('says the limit that applied when none was asked for', async () => {
    const response = await client.responses.create({ model: MODEL_ID, temperature: 0, input: 'x' });
    expect(response.max_output_tokens).toBe(512); // BAMBA_DEFAULT_MAX_TOKENS
  });
});

describe('conversations', () => {
  it('create with items, respond in it (the second turn resumes), list and edit items', async () => {
    const conversation = await client.conversations.create({ items: [{ type: 'message', role: 'system', content: INSTRUCTIONS }], metadata: { topic: 'test' } });
    expect(conversation).toMatchObject({ object: 'conversation', metadata: { topic: 'test' } });
    const first = await client.responses.create({ ...greedy, input: 'Hello.', conversation: conversation.id });
    const { data: second, response } = await client.responses.create({ ...greedy, input: 'More.', conversation: conversation.id }).withResponse();
    expect(response.headers.get('x-bamba-resume')).toMatch(/^(resident|snapshot)$/);
    expect(second.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(second.conversation).toEqual({ id: conversation.id });
    const replayed = await directGreedy(engine, [{ role: 'system', content: INSTRUCTIONS }, { role: 'user', content: 'Hello.' }, { role: 'assistant', content: first.output_text }, { role: 'user', content: 'More.' }], 24);
    expect(second.output_text).toBe(replayed);

    const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
    expect(items.data.map((item) => (item.type === 'message' ? item.role : item.type))).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(items.data[2]!.id).toBe(first.output[0]!.id); // the answer's item id is the response's output item id
    // An answer its token limit cut is an incomplete item, as its response's output item says.
    expect(first.status).toBe('incomplete');
    expect(items.data.map((item) => (item.type === 'message' ? item.status : null))).toEqual(['completed', 'completed', 'incomplete', 'completed', second.status]);
    const added = await client.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: 'An aside.' }] });
    expect(added.data).toHaveLength(1);
    const addedId = added.data[0]!.id!;
    const fetched = await client.conversations.items.retrieve(addedId, { conversation_id: conversation.id });
    expect(fetched).toMatchObject({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'An aside.' }] });
    await client.conversations.items.delete(addedId, { conversation_id: conversation.id });
    await expect(client.conversations.items.retrieve(addedId, { conversation_id: conversation.id })).rejects.toMatchObject({ status: 404 });
    const page = await client.conversations.items.list(conversation.id, { limit: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.has_more).toBe(true);
    // A cursor that is not an item here gives an empty page, never the first page again.
    const unknown = await client.conversations.items.list(conversation.id, { limit: 2, after: 'msg_not_here' });
    expect(unknown.data).toEqual([]);
    expect(unknown.has_more).toBe(false);

    const updated = await client.conversations.update(conversation.id, { metadata: { topic: 'changed' } });
    expect(updated.metadata).toEqual({ topic: 'changed' });
    expect((await client.conversations.update(conversation.id, { metadata: null })).metadata).toEqual({}); // the client's way to clear it
    await client.conversations.delete(conversation.id);
    await expect(client.conversations.retrieve(conversation.id)).rejects.toMatchObject({ status: 404 });
  });

  it('refuses 21 items at once and a system item after the start', async () => {
    const items = Array.from({ length: 21 }, () => ({ type: 'message' as const, role: 'user' as const, content: 'x' }));
    await expect(client.conversations.create({ items })).rejects.toMatchObject({ status: 400, param: 'items' });
    const conversation = await client.conversations.create({});
    await expect(client.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'system', content: 'late' }] })).rejects.toMatchObject({ status: 400, param: 'items[0].role' });
    expect((await client.conversations.items.list(conversation.id)).data).toHaveLength(0);
  });
});

describe('tenancy', () => {
  it('another tenant gets 404 for responses and conversations', async () => {
    const response = await client.responses.create({ ...greedy, input: 'Mine.' });
    const conversation = await client.conversations.create({ items: [{ type: 'message', role: 'user', content: 'Mine too.' }] });
    await expect(other.responses.retrieve(response.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.responses.inputItems.list(response.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.responses.delete(response.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.responses.create({ ...greedy, input: 'Steal.', previous_response_id: response.id })).rejects.toMatchObject({ status: 404 });
    await expect(other.conversations.retrieve(conversation.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.conversations.items.list(conversation.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.responses.create({ ...greedy, input: 'Steal.', conversation: conversation.id })).rejects.toMatchObject({ status: 404 });
    await expect(other.conversations.delete(conversation.id)).rejects.toMatchObject({ status: 404 });
    expect((await client.responses.retrieve(response.id)).id).toBe(response.id);
    expect((await client.conversations.retrieve(conversation.id)).id).toBe(conversation.id);
  });
});
