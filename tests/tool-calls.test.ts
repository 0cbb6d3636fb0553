/**
 * Tool calling against a real stack with the official `openai` client. A forced choice
 * (`required`, or a named tool) holds the answer to calls whose arguments match the tool's
 * parameters (the tiny model's random weights would otherwise write random characters); the
 * calls come back as OpenAI's `tool_calls`, streamed and not, and through the client's
 * `parse()` with zod; the history with the call and the tool's answer resumes from the state
 * saved after the call; `auto` answers text with the tools in the prompt; a batch line calls
 * tools too; what cannot be served is refused by name.
 */
import OpenAI from 'openai';
import { LengthFinishReasonError } from 'openai/error';
import { zodFunction } from 'openai/helpers/zod';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBatchLine, runChatBatch } from './support/chat-batch.js';
import { MODEL_ID, postJson, readSse, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startTestStack({ workers: 1 });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => stack?.stop());

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', minLength: 1, maxLength: 10 }, units: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer' } },
      required: ['city', 'units', 'days'],
      additionalProperties: false,
    },
  },
} as const;
const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 6 } }, required: ['zone'], additionalProperties: false } } } as const;
const ask = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

/** What WEATHER's parameters require, written out: what the grammar must have enforced. */
function expectWeatherArguments(text: string) {
  const args = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(args)).toEqual(['city', 'units', 'days']);
  expect(typeof args.city === 'string' && args.city.length >= 1 && args.city.length <= 10).toBe(true);
  expect(['celsius', 'fahrenheit']).toContain(args.units);
  expect(Number.isInteger(args.days)).toBe(true);
}
function expectTimeArguments(text: string) {
  const args = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(args)).toEqual(['zone']);
  expect(typeof args.zone === 'string' && args.zone.length <= 6).toBe(true);
}

describe('forced tool calls', () => {
  it('answers a named tool_choice with exactly one call of that tool, its arguments held to the parameters', async () => {
    // Sampled at temperature 1 over several seeds: the grammar allows one call whatever the model would write next.
    const answers = await Promise.all([{ temperature: 0, seed: 5 }, ...[15, 16, 17, 18, 19].map((seed) => ({ temperature: 1, seed }))].map((sampling) => client.chat.completions.create({
      model: MODEL_ID, messages: ask, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 200, ...sampling,
    })));
    for (const answer of answers) {
      const choice = answer.choices[0]!;
      expect(choice.finish_reason).toBe('stop'); // OpenAI's for a named tool
      expect(choice.message.content).toBeNull();
      expect(choice.message.tool_calls).toHaveLength(1);
      const call = choice.message.tool_calls![0]!;
      expect(call.type).toBe('function');
      expect(call.id).toMatch(/^call_[A-Za-z0-9_-]{16}$/);
      if (call.type !== 'function') throw new Error('not a function call');
      expect(call.function.name).toBe('get_weather');
      expectWeatherArguments(call.function.arguments);
    }
  });

  it('holds a forced call to its end past stop strings, and drops one that max_tokens cuts', async () => {
    const stopped = await client.chat.completions.create({ model: MODEL_ID, messages: ask, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, temperature: 0, stop: ['"', ':'] });
    expect(stopped.choices[0]!.finish_reason).toBe('tool_calls');
    const call = stopped.choices[0]!.message.tool_calls![0]!;
    if (call.type !== 'function') throw new Error('not a function call');
    expectWeatherArguments(call.function.arguments);
    const cut = await client.chat.completions.create({ model: MODEL_ID, messages: ask, tools: [WEATHER], tool_choice: 'required', max_tokens: 8, temperature: 0 });
    expect(cut.choices[0]!.finish_reason).toBe('length');
    expect(cut.choices[0]!.message.content).toBe('');
    expect(cut.choices[0]!.message.tool_calls).toBeUndefined();
  });

  it('answers required with calls of the offered tools: one without parallel calls, one or more with', async () => {
    const single = await client.chat.completions.create({ model: MODEL_ID, messages: ask, tools: [WEATHER, TIME], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 300, temperature: 0.8, seed: 11 });
    expect(single.choices[0]!.finish_reason).toBe('tool_calls');
    expect(single.choices[0]!.message.tool_calls).toHaveLength(1);
    for (const seed of [1, 2, 3]) {
      const several = await client.chat.completions.create({ model: MODEL_ID, messages: ask, tools: [WEATHER, TIME], tool_choice: 'required', max_tokens: 400, temperature: 0.8, seed });
      const calls = several.choices[0]!.message.tool_calls ?? [];
      expect(calls.length).toBeGreaterThanOrEqual(1);
      // A token limit may cut a further call: it is dropped, and the finish reason says so.
      expect(['tool_calls', 'length']).toContain(several.choices[0]!.finish_reason);
      for (const call of calls) {
        if (call.type !== 'function') throw new Error('not a function call');
        if (call.function.name === 'get_weather') expectWeatherArguments(call.function.arguments);
        else { expect(call.function.name).toBe('get_time'); expectTimeArguments(call.function.arguments); }
      }
      expect(new Set(calls.map((call) => call.id)).size).toBe(calls.length);
    }
  });

  it('streams the calls as tool_calls deltas that the client assembles into the same calls', async () => {
    const request = { model: MODEL_ID, messages: ask, tools: [WEATHER], tool_choice: 'required' as const, max_tokens: 200, temperature: 0, parallel_tool_calls: false };
    const whole = await client.chat.completions.create(request);
    const streamed = await client.chat.completions.stream(request).finalChatCompletion();
    expect(streamed.choices[0]!.finish_reason).toBe('tool_calls');
    const [a, b] = [whole, streamed].map((answer) => answer.choices[0]!.message.tool_calls!.map((call) => (call.type === 'function' ? [call.function.name, call.function.arguments] : [])));
    expect(b).toEqual(a);
    // On the wire: a role and the calls with their index, then the finish reason.
    const response = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...request, stream: true }) });
    const chunks = (await readSse(response)).filter((data) => data !== '[DONE]').map((data) => JSON.parse(data));
    const withCalls = chunks.filter((chunk) => chunk.choices[0]?.delta?.tool_calls);
    expect(withCalls).toHaveLength(1);
    expect(withCalls[0].choices[0].delta).toMatchObject({ role: 'assistant', content: null, tool_calls: [{ index: 0, type: 'function', function: { name: 'get_weather' } }] });
    expect(chunks.at(-1).choices[0].finish_reason).toBe('tool_calls');
  });

  it('parses arguments through the client with zodFunction, and goes on from the tool\'s answer resuming from the saved call', async () => {
    const lookup = zodFunction({ name: 'lookup', parameters: z.object({ query: z.string().max(12), limit: z.number().int() }) });
    const parsed = await client.chat.completions.parse({ model: MODEL_ID, messages: ask, tools: [lookup], tool_choice: { type: 'function', function: { name: 'lookup' } }, max_tokens: 200, temperature: 0 });
    const call = parsed.choices[0]!.message.tool_calls![0]!;
    expect(call.function.name).toBe('lookup');
    const args = call.function.parsed_arguments as { query: string; limit: number };
    expect(typeof args.query).toBe('string');
    expect(Number.isInteger(args.limit)).toBe(true);
    // The client sends the call back with the tool's answer: the history renders to the tokens
    // the model generated, so the state saved after the call is resumed, not replayed.
    const next = await client.chat.completions.create({
      model: MODEL_ID,
      messages: [...ask, { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }] }, { role: 'tool', tool_call_id: call.id, content: '3 results' }],
      tools: [lookup],
      tool_choice: 'none',
      max_tokens: 20,
      temperature: 0,
    });
    expect(next.choices[0]!.message.tool_calls).toBeUndefined();
    expect(typeof next.choices[0]!.message.content).toBe('string');
    // All of it: the first request's prompt, its call, and the end of its turn.
    expect(next.usage!.prompt_tokens_details!.cached_tokens).toBe(parsed.usage!.prompt_tokens + parsed.usage!.completion_tokens + 1);
  });
});

describe('forced calls of tools whose parameters have definitions', () => {
  it('holds a recursive zod parameter schema (draft-07 definitions, moved to the grammar\'s root) beside another tool', async () => {
    type Node = { label: string; children: Node[] };
    const node: z.ZodType<Node> = z.lazy(() => z.object({ label: z.string().max(5), children: z.array(node).max(2) }));
    const tree = zodFunction({ name: 'tree', parameters: z.object({ root: node }) });
    const pair = zodFunction({ name: 'pair', parameters: z.object({ x: z.string().max(4) }) });
    let answered = 0;
    // Random weights nest at random: some of these seeds close the tree within the limit.
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      let parsed;
      try {
        parsed = await client.chat.completions.parse({ model: MODEL_ID, messages: ask, tools: [tree, pair], tool_choice: { type: 'function', function: { name: 'tree' } }, max_tokens: 185, temperature: 1, seed });
      } catch (error) {
        if (error instanceof LengthFinishReasonError) continue; // a deep tree may not end within the limit
        throw error;
      }
      const choice = parsed.choices[0]!;
      const call = choice.message.tool_calls![0]!;
      // parse() ran zod over the arguments: they match the schema or it threw.
      expect(call.function.name).toBe('tree');
      expect((call.function.parsed_arguments as { root: Node }).root.children).toBeInstanceOf(Array);
      answered++;
    }
    expect(answered).toBeGreaterThan(0);
  });
});

describe('tool_choice auto and none', () => {
  it('lists the tools in the prompt and answers text when the model writes no call', async () => {
    const plain = await client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 16, temperature: 0 });
    for (const tool_choice of ['auto', 'none'] as const) {
      const answer = await client.chat.completions.create({ model: MODEL_ID, messages: ask, tools: [WEATHER], tool_choice, max_tokens: 16, temperature: 0 });
      expect(answer.usage!.prompt_tokens).toBeGreaterThan(plain.usage!.prompt_tokens + JSON.stringify(WEATHER.function.parameters).length);
      expect(answer.choices[0]!.message.tool_calls).toBeUndefined();
      expect(typeof answer.choices[0]!.message.content).toBe('string');
      expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0);
    }
  });
});

describe('tool calls in a batch', () => {
  it('answers a batch line with its forced call', async () => {
    const { batch, output: [output] } = await runChatBatch(client, stack, [chatBatchLine('call', { model: MODEL_ID, messages: ask, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200 })]);
    expect(batch.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    const choice = output.response.body.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls[0].function.name).toBe('get_weather');
    expectWeatherArguments(choice.message.tool_calls[0].function.arguments);
  });
});

describe('tools in a session', () => {
  it('calls a tool in one turn and answers from the tool\'s output in the next, resuming from the turn\'s state; the session lists the call', async () => {
    const created = await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID });
    expect(created.status).toBe(201);
    const sessionId = created.json.id as string;
    const turn = (body: Record<string, unknown>) => postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, session_id: sessionId, tools: [WEATHER], max_tokens: 200, temperature: 0, ...body });
    const first = await turn({ messages: ask, tool_choice: 'required', parallel_tool_calls: false });
    expect(first.status).toBe(200);
    const call = first.json.choices[0].message.tool_calls[0];
    expectWeatherArguments(call.function.arguments);
    // A tool message must answer a call the session (or the turn) made.
    const stray = await turn({ messages: [{ role: 'tool', tool_call_id: 'call_nope', content: 'x' }], max_tokens: 8 });
    expect({ status: stray.status, param: stray.json.error?.param }).toEqual({ status: 400, param: 'messages[0].tool_call_id' });
    const second = await turn({ messages: [{ role: 'tool', tool_call_id: call.id, content: '21 degrees' }], tool_choice: 'none', max_tokens: 8 });
    expect(second.status).toBe(200);
    expect(second.headers.get('x-bamba-resume')).not.toBe('replay');
    expect(second.json.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    const session = await fetch(`${stack.url}/v1/sessions/${sessionId}`).then((response) => response.json());
    expect(session.messages.slice(0, 3)).toEqual([
      { role: 'user', content: ask[0]!.content },
      { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: call.function.arguments } }] },
      { role: 'tool', content: '21 degrees', tool_call_id: call.id },
    ]);
  });

  it('names a stored call the model cannot be shown as the session\'s, and the turn\'s own messages from 0', async () => {
    const conversation = await client.conversations.create({ items: [{ type: 'message', role: 'user', content: 'x' }, { type: 'function_call', call_id: 'call_<|end_of_text|>', name: 'f', arguments: '{}' }] });
    await expect(client.responses.create({ model: MODEL_ID, conversation: conversation.id, input: 'y', max_output_tokens: 4 })).rejects.toMatchObject({ status: 400, param: 'conversation' });
    const session = (await postJson(`${stack.url}/v1/sessions`, { model: MODEL_ID })).json.id as string;
    expect((await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, session_id: session, max_tokens: 4, messages: [{ role: 'user', content: 'first' }] })).status).toBe(200);
    // The third and fourth messages of the conversation, the turn's first and second.
    const turn = await postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, session_id: session, max_tokens: 4, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'call_<|end_of_text|>', type: 'function', function: { name: 'f', arguments: '{}' } }] }] });
    expect({ status: turn.status, param: turn.json.error?.param }).toEqual({ status: 400, param: 'messages[1].tool_calls' });
  });

  it('goes on in a Responses conversation from a function_call_output', async () => {
    const conversation = await client.conversations.create({});
    const weather = { type: 'function' as const, name: 'get_weather', parameters: WEATHER.function.parameters, strict: true };
    const first = await client.responses.create({ model: MODEL_ID, conversation: conversation.id, input: 'Weather in Oslo?', tools: [weather], tool_choice: 'required', max_output_tokens: 200, temperature: 0 });
    const call = first.output.find((item) => item.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error('expected a function_call item');
    const next = await client.responses.create({ model: MODEL_ID, conversation: conversation.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: 'snow' }], tools: [weather], tool_choice: 'none', max_output_tokens: 8, temperature: 0 });
    expect(next.output.map((item) => item.type)).toEqual(['message']);
    expect(next.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
    const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
    expect(items.data.map((item) => item.type)).toEqual(['message', 'function_call', 'function_call_output', 'message']);
  });
});

describe('a conversation\'s call items', () => {
  it('takes calls and their outputs as items, and deletes a call with its output', async () => {
    const conversation = await client.conversations.create({ items: [{ type: 'message', role: 'user', content: 'Weather?' }] });
    const call = (id: string) => ({ type: 'function_call' as const, call_id: id, name: 'get_weather', arguments: `{"city": "${id}"}` });
    await expect(client.conversations.items.create(conversation.id, { items: [{ type: 'function_call_output', call_id: 'call_nope', output: 'x' }] })).rejects.toMatchObject({ status: 400, param: 'items[0].call_id' });
    await client.conversations.items.create(conversation.id, { items: [call('call_a'), call('call_b')] });
    await client.conversations.items.create(conversation.id, { items: [{ type: 'function_call_output', call_id: 'call_a', output: [{ type: 'input_text', text: 'sun' }] }, { type: 'function_call_output', call_id: 'call_b', output: 'rain' }] });
    const list = async () => (await client.conversations.items.list(conversation.id, { order: 'asc' })).data.map((item) => (item.type === 'function_call' || item.type === 'function_call_output' ? `${item.type}:${item.call_id}` : item.type));
    expect(await list()).toEqual(['message', 'function_call:call_a', 'function_call:call_b', 'function_call_output:call_a', 'function_call_output:call_b']);
    await client.conversations.items.delete('fc_call_a', { conversation_id: conversation.id });
    expect(await list()).toEqual(['message', 'function_call:call_b', 'function_call_output:call_b']);
    await expect(client.conversations.items.delete('fc_call_a', { conversation_id: conversation.id })).rejects.toMatchObject({ status: 404 });
    // The next turn renders what is left: the remaining call and its answer.
    const next = await client.responses.create({ model: MODEL_ID, conversation: conversation.id, input: 'So?', max_output_tokens: 4 });
    expect(next.status === 'completed' || next.status === 'incomplete').toBe(true);
  });
});

describe('function tools on the Responses API', () => {
  const weather = { type: 'function' as const, name: 'get_weather', description: WEATHER.function.description, parameters: WEATHER.function.parameters, strict: true };
  const forced = { model: MODEL_ID, input: 'What is the weather in Paris?', tools: [weather], tool_choice: { type: 'function' as const, name: 'get_weather' }, max_output_tokens: 200, temperature: 0 };

  it('answers a forced choice with a function_call item alone, streamed as OpenAI\'s events, and stores it', async () => {
    const response = await client.responses.create(forced);
    expect(response.status).toBe('completed');
    expect(response.output).toHaveLength(1);
    const call = response.output[0]!;
    if (call.type !== 'function_call') throw new Error(`expected a function_call item, got ${call.type}`);
    expect(call).toMatchObject({ name: 'get_weather', status: 'completed' });
    expect(call.call_id).toMatch(/^call_/);
    expect(call.id).toBe(`fc_${call.call_id}`);
    expectWeatherArguments(call.arguments);
    expect(response.output_text).toBe('');
    expect(response.tool_choice).toEqual({ type: 'function', name: 'get_weather' });
    expect(response.tools).toMatchObject([{ type: 'function', name: 'get_weather' }]);
    expect((await client.responses.retrieve(response.id)).output).toEqual(response.output);

    const events: Array<{ type: string; sequence_number: number }> = [];
    const stream = client.responses.stream(forced);
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    expect(events.map((event) => event.type)).toEqual([
      'response.created', 'response.in_progress',
      'response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.done', 'response.output_item.done',
      'response.completed',
    ]);
    const numbers = events.map((event) => event.sequence_number);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    const streamedCall = final.output[0]!;
    if (streamedCall.type !== 'function_call') throw new Error('expected a function_call item');
    expect([streamedCall.name, streamedCall.arguments]).toEqual([call.name, call.arguments]);
    expect(response.tools[0]).toMatchObject({ strict: true });
    // The stored response replays the very events the live stream sent.
    const replayed: typeof events = [];
    for await (const event of await client.responses.retrieve(final.id, { stream: true })) replayed.push(event);
    const comparable = (list: typeof events) => list.map((event) => ({ ...event, response: undefined }));
    expect(comparable(replayed)).toEqual(comparable(events));
  });

  it('goes on from a function_call_output, by previous_response_id (resuming from the saved call) or with the whole history', async () => {
    const first = await client.responses.create(forced);
    const call = first.output[0]!;
    if (call.type !== 'function_call') throw new Error('expected a function_call item');
    const chained = await client.responses.create({ model: MODEL_ID, previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '21 degrees' }], tools: [weather], tool_choice: 'none', max_output_tokens: 12, temperature: 0 });
    expect(chained.status === 'completed' || chained.status === 'incomplete').toBe(true);
    expect(chained.output.map((item) => item.type)).toEqual(['message']);
    // All of the first response's context: its input, its call, and the end of its turn.
    expect(chained.usage!.input_tokens_details.cached_tokens).toBe(first.usage!.input_tokens + first.usage!.output_tokens + 1);
    const items = await client.responses.inputItems.list(chained.id);
    expect(items.data).toMatchObject([{ type: 'function_call_output', call_id: call.call_id, output: '21 degrees' }]);
    // The same history sent whole: the same answer.
    const whole = await client.responses.create({
      model: MODEL_ID,
      input: [{ role: 'user', content: forced.input }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments }, { type: 'function_call_output', call_id: call.call_id, output: '21 degrees' }],
      tools: [weather], tool_choice: 'none', max_output_tokens: 12, temperature: 0,
    });
    expect(whole.output_text).toBe(chained.output_text);
  });

  it('takes tool_choice auto without tools, as OpenAI\'s responses show it by default', async () => {
    const response = await client.responses.create({ model: MODEL_ID, input: 'hi', tools: [], tool_choice: 'auto', parallel_tool_calls: false, max_output_tokens: 4 });
    expect([response.tool_choice, response.parallel_tool_calls, response.output.map((item) => item.type)]).toEqual(['auto', false, ['message']]);
  });

  it('refuses what it cannot serve by name', async () => {
    await expect(client.responses.create({ model: MODEL_ID, input: [{ type: 'function_call_output', call_id: 'call_nope', output: 'x' }] })).rejects.toMatchObject({ status: 400, param: 'input[0].call_id' });
    const call = { type: 'function_call' as const, call_id: 'call_1', name: 'get_weather', arguments: '{}' };
    await expect(client.responses.create({ model: MODEL_ID, input: [{ role: 'user', content: 'x' }, call, { ...call }] })).rejects.toMatchObject({ status: 400, param: 'input[2].call_id' });
    // Found by the gpu-node, named by the input item it came from.
    await expect(client.responses.create({ model: MODEL_ID, instructions: 'be brief', input: [{ role: 'user', content: 'x' }, { ...call, call_id: 'call_<|end_of_text|>' }] })).rejects.toMatchObject({ status: 400, param: 'input[1]' });
    await expect(client.responses.create({ model: MODEL_ID, input: [{ type: 'function_call', call_id: 'c', name: 'f' } as never] })).rejects.toMatchObject({ status: 400, param: 'input[0].arguments' });
    await expect(client.responses.create({ ...forced, tool_choice: { type: 'function', name: 'other' } })).rejects.toMatchObject({ status: 400, param: 'tool_choice' });
    await expect(client.responses.create({ ...forced, text: { format: { type: 'json_object' } } })).rejects.toMatchObject({ status: 400, param: 'text.format' });
    const conversation = await client.conversations.create({});
    await expect(client.responses.create({ ...forced, input: [{ type: 'function_call_output', call_id: 'call_nope', output: 'x' }], conversation: conversation.id })).rejects.toMatchObject({ status: 400, param: 'input[0].call_id' });
  });
});

describe('refusals', () => {
  const chat = (body: Record<string, unknown>) => postJson(`${stack.url}/v1/chat/completions`, { model: MODEL_ID, messages: ask, max_tokens: 8, ...body });
  const withPattern = { type: 'function', function: { name: 'find', parameters: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]+$' } } } } };

  it('refuses what it cannot serve by name, as a 400', async () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice', /not among the tools/],
      [{ tool_choice: 'required' }, 'tool_choice', /needs tools/],
      [{ tools: [withPattern], tool_choice: 'required' }, 'tools[0].function.parameters.properties.code.pattern', /pattern/],
      [{ tools: [WEATHER, WEATHER] }, 'tools[1].function.name', /two tools/],
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type', /function/],
      [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] }, 'tools[0].function.parameters.type', /type "object"/],
      [{ tools: [WEATHER], response_format: { type: 'json_object' } }, 'response_format', /tool_choice/],
      [{ functions: [WEATHER.function] }, 'functions', /deprecated/],
      [{ messages: [...ask, { role: 'tool', tool_call_id: 'call_x', content: 'hi' }] }, 'messages[1].tool_call_id', /no earlier call has id/],
      [{ messages: [...ask, { role: 'assistant' }] }, 'messages[1].content', /content is required/],
      [{ messages: [...ask, ...[1, 2].map(() => ({ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }))] }, 'messages[2].tool_calls[0].id', /already made/],
      [{ messages: [{ role: 'user', content: 'x', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } }] }] }, 'messages[0].tool_calls', /only assistant/],
      // Checked by the gpu-node: template text that would forge a control token, a name its model cannot write.
      [{ tools: [{ type: 'function', function: { name: 'f', description: 'x<|end_of_text|>y' } }] }, 'tools', /control tokens/],
      [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { 'café': { type: 'string' } } } } }], tool_choice: 'required' }, 'tools', /cannot write/],
    ];
    for (const [body, param, message] of cases) {
      const answer = await chat(body);
      expect({ status: answer.status, param: answer.json?.error?.param }).toEqual({ status: 400, param });
      expect(answer.json.error.message).toMatch(message);
    }
  });

  it('accepts under auto the parameters a forced choice would refuse: they are only shown to the model', async () => {
    const answer = await chat({ tools: [withPattern], tool_choice: 'auto' });
    expect(answer.status).toBe(200);
  });

  it('refuses parameters nested deeper than it renders safely, whatever the tool choice', async () => {
    // Written as text: this test's own JSON.stringify would overflow on such an object.
    for (const levels of [100, 5_000, 20_000]) {
      const parameters = `${'{"type": "object", "properties": {"a": '.repeat(levels)}{"type": "string"}${'}}'.repeat(levels)}`;
      const body = `{"model": ${JSON.stringify(MODEL_ID)}, "messages": ${JSON.stringify(ask)}, "max_tokens": 8, "tools": [{"type": "function", "function": {"name": "f", "parameters": ${parameters}}}]}`;
      const answer = await postJson(`${stack.url}/v1/chat/completions`, body);
      expect({ status: answer.status, param: answer.json?.error?.param }).toEqual({ status: 400, param: 'tools[0].function.parameters' });
    }
  });

  it('refuses text that is not Unicode (an unpaired surrogate) anywhere in a request, before any grammar is built of it', async () => {
    const lone = '\\ud83d';
    const cases: Array<[string, string, string]> = [
      ['/v1/chat/completions', `{"model": "${MODEL_ID}", "messages": [{"role": "user", "content": "a${lone}"}]}`, 'messages[0].content'],
      ['/v1/chat/completions', `{"model": "${MODEL_ID}", "messages": [{"role": "user", "content": "a"}], "tool_choice": "required", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"const": "${lone}"}}}}}]}`, 'tools[0].function.parameters.properties.a.const'],
      ['/v1/chat/completions', `{"model": "${MODEL_ID}", "messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"enum": ["\\udc00"]}}}}`, 'response_format.json_schema.schema.enum[0]'],
      ['/v1/responses', `{"model": "${MODEL_ID}", "input": [{"type": "function_call_output", "call_id": "c${lone}", "output": "x"}]}`, 'input[0].call_id'],
    ];
    for (const [path, body, param] of cases) {
      const answer = await postJson(`${stack.url}${path}`, body);
      expect({ status: answer.status, param: answer.json?.error?.param }).toEqual({ status: 400, param });
    }
    // Every gpu-node still serves.
    expect((await chat({})).status).toBe(200);
  });

  it('takes empty parameters as any object, even for a forced call', async () => {
    const answer = await chat({ tools: [{ type: 'function', function: { name: 'f', parameters: {} } }], tool_choice: 'required', max_tokens: 60, temperature: 0 });
    expect(answer.status).toBe(200);
    const calls = answer.json.choices[0].message.tool_calls ?? [];
    for (const call of calls) expect(JSON.parse(call.function.arguments)).toBeTypeOf('object');
  });
});
