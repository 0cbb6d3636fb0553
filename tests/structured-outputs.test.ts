/**
 * Structured outputs against a real stack with the official `openai` client: an answer held to a
 * JSON Schema parses and matches it (the tiny model's random weights would otherwise write random
 * characters), greedy and sampled, streamed and not, in a session turn, on the Responses API and
 * in a batch; `json_object` answers are JSON objects; a schema keyword the grammar could not
 * enforce is refused by name.
 */
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBatchLine, runChatBatch } from './support/chat-batch.js';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startTestStack({ workers: 1 });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => stack?.stop());

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 12, description: 'annotations are accepted' },
    age: { type: 'integer' },
    role: { enum: ['admin', 'user'] },
    tags: { type: 'array', items: { $ref: '#/$defs/tag' }, maxItems: 3 },
    manager: { anyOf: [{ type: 'null' }, { type: 'string', maxLength: 8 }] },
  },
  required: ['name', 'age', 'role', 'tags', 'manager'],
  additionalProperties: false,
  $defs: { tag: { type: 'string', maxLength: 6 } },
} as const;

/** The checks PERSON makes, written out: what the grammar must have enforced. */
function expectPerson(content: string) {
  // The answer ends at the value (no trailing newlines), and an integer has no exponent.
  expect(content.endsWith('}')).toBe(true);
  expect(content).toMatch(/"age": ?-?[0-9]+[ \n\t]*,/);
  const value = JSON.parse(content) as Record<string, unknown>;
  expect(Object.keys(value)).toEqual(['name', 'age', 'role', 'tags', 'manager']);
  expect(typeof value.name).toBe('string');
  expect((value.name as string).length).toBeGreaterThanOrEqual(1);
  expect((value.name as string).length).toBeLessThanOrEqual(12);
  expect(Number.isInteger(value.age)).toBe(true);
  expect(['admin', 'user']).toContain(value.role);
  expect(Array.isArray(value.tags)).toBe(true);
  expect((value.tags as unknown[]).length).toBeLessThanOrEqual(3);
  for (const tag of value.tags as unknown[]) expect(typeof tag === 'string' && tag.length <= 6).toBe(true);
  expect(value.manager === null || (typeof value.manager === 'string' && value.manager.length <= 8)).toBe(true);
}

const personFormat = { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } } as const;
const ask = [{ role: 'user' as const, content: 'Describe a person as JSON.' }];

describe('structured outputs', () => {
  it('holds greedy and sampled answers to a JSON Schema', async () => {
    const answers = await Promise.all([
      client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 200, temperature: 0, response_format: personFormat }),
      ...[1, 2, 3].map((seed) => client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 200, temperature: 1, seed, response_format: personFormat })),
    ]);
    for (const answer of answers) {
      expect(answer.choices[0]!.finish_reason).toBe('stop'); // the grammar ended it, not the limit
      expectPerson(answer.choices[0]!.message.content!);
    }
    // The same request without the format: the random weights write no JSON.
    const free = await client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 40, temperature: 0 });
    expect(() => JSON.parse(free.choices[0]!.message.content!)).toThrow();
  });

  it('streams a held answer, and holds a session turn that the next turn resumes from', async () => {
    const stream = await client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 200, temperature: 0, response_format: personFormat, stream: true });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    expectPerson(streamed);

    const session = await (await fetch(`${stack.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID }) })).json() as { id: string };
    const turn = (content: string) => client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content }], max_tokens: 200, temperature: 0, response_format: personFormat, session_id: session.id } as never).withResponse();
    const first = await turn('Describe a person as JSON.');
    expectPerson(first.data.choices[0]!.message.content!);
    const second = await turn('Another one.');
    expectPerson(second.data.choices[0]!.message.content!);
    expect(second.response.headers.get('x-bamba-resume')).toMatch(/^(resident|snapshot)$/);
  });

  it("answers the openai client's parse() with a zod schema (zodResponseFormat), which it checks itself", async () => {
    const Step = z.object({ explanation: z.string().max(10), done: z.boolean() });
    const Plan = z.object({ steps: z.array(Step).max(3), note: z.string().max(8).nullable(), kind: z.enum(['a', 'b']), n: z.number().int() });
    const completion = await client.chat.completions.parse({ model: MODEL_ID, messages: ask, max_tokens: 300, temperature: 0, response_format: zodResponseFormat(Plan, 'plan') });
    const parsed = completion.choices[0]!.message.parsed;
    expect(parsed).not.toBeNull();
    expect(Plan.parse(parsed)).toEqual(parsed);

    // A recursive zod schema: the client writes it with draft-07 `definitions` and `#/definitions/…` references.
    const Category = z.object({ name: z.string().max(6), get children() { return z.array(Category).max(1); } });
    const Tree = z.object({ root: Category });
    const format = zodResponseFormat(Tree, 'tree');
    expect(JSON.stringify(format.json_schema.schema)).toContain('#/definitions/');
    // How deep random weights nest is chance (greedy, they never stop): these seeds close the tree within the limit.
    for (const seed of [4, 6, 7]) {
      const tree = await client.chat.completions.parse({ model: MODEL_ID, messages: ask, max_tokens: 600, temperature: 1, seed, response_format: format });
      expect(tree.choices[0]!.finish_reason).toBe('stop');
      expect(Tree.parse(tree.choices[0]!.message.parsed)).toEqual(tree.choices[0]!.message.parsed);
    }
  });

  it('answers json_object with a JSON object', async () => {
    const answer = await client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 300, temperature: 0, response_format: { type: 'json_object' } });
    expect(answer.choices[0]!.finish_reason).toBe('stop');
    const value: unknown = JSON.parse(answer.choices[0]!.message.content!);
    expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  });

  it('refuses what the grammar could not enforce, naming the keyword, before anything runs', async () => {
    const refusal = (schema: unknown) => client.chat.completions.create({ model: MODEL_ID, messages: ask, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: schema as Record<string, unknown> } } });
    await expect(refusal({ type: 'integer', minimum: 3 })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.minimum' });
    await expect(refusal({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.properties.a.$ref' });
    await expect(refusal({ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.required' });
    await expect(refusal({ type: 'object', properties: { a: { $ref: '#/definitions/a' } }, definitions: { a: { type: 'string' } }, $defs: {} })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.definitions', message: expect.stringContaining('not both') });
    await expect(refusal({ type: 'date' })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.type' });
    await expect(client.chat.completions.create({ model: MODEL_ID, messages: ask, response_format: { type: 'json_schema' } as never })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema' });
    await expect(refusal({ oneOf: [{ type: 'number' }, { type: 'integer' }] })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.oneOf' });
    await expect(refusal({ type: 'string', maxLength: 2001 })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.maxLength' });
    await expect(refusal({ const: 'x\bq' })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.const' });
    // Two alternatives that start alike, nested: the grammar's open branches would double with each level.
    await expect(refusal({ $defs: { a: { anyOf: [{ type: 'array', items: { $ref: '#/$defs/a' }, maxItems: 1 }, { type: 'array', items: { $ref: '#/$defs/a' }, maxItems: 2 }] } }, $ref: '#/$defs/a' }))
      .rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.$defs.a.anyOf' });
    await expect(refusal({ $defs: { n: { type: 'object', properties: { next: { $ref: '#/$defs/n' } } } }, $ref: '#/$defs/n' }))
      .rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.$defs.n', message: expect.stringContaining('always contains itself') });
    // A definition that refers to itself before writing anything (llama.cpp would refuse its grammar).
    await expect(refusal({ $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, $ref: '#/$defs/a' })).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.$defs.a.anyOf' });
    // Found by the gpu-node, still the request's fault (a 400, never a retry or a crash): a literal
    // this model has no tokens for (the tiny vocabulary has no é).
    await expect(refusal({ type: 'object', properties: { café: { type: 'null' } } })).rejects.toMatchObject({ status: 400, param: 'response_format', message: expect.stringContaining("cannot write 'café'") });
    const after = await client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 200, temperature: 0, response_format: personFormat });
    expectPerson(after.choices[0]!.message.content!);
  });

  it('holds a Responses answer to text.format, shows the format on the response, and refuses by the same rules', async () => {
    const format = { type: 'json_schema', name: 'person', schema: PERSON, strict: true } as const;
    const response = await client.responses.create({ model: MODEL_ID, input: 'Describe a person as JSON.', max_output_tokens: 200, temperature: 0, text: { format } });
    expect(response.status).toBe('completed');
    expectPerson(response.output_text);
    expect(response.text?.format).toEqual(format);
    expect((await client.responses.retrieve(response.id)).text?.format).toEqual(format);
    // A child does not inherit the format (as OpenAI's): it answers in plain text.
    const child = await client.responses.create({ model: MODEL_ID, input: 'And now?', previous_response_id: response.id, max_output_tokens: 8, temperature: 0 });
    expect(child.text?.format).toEqual({ type: 'text' });

    const object = await client.responses.create({ model: MODEL_ID, input: 'JSON please.', max_output_tokens: 300, temperature: 0, text: { format: { type: 'json_object' } } });
    expect(object.status).toBe('completed');
    expect(typeof JSON.parse(object.output_text)).toBe('object');

    await expect(client.responses.create({ model: MODEL_ID, input: 'x', text: { format: { type: 'json_schema', name: 'n', schema: { type: 'integer', minimum: 1 } } } }))
      .rejects.toMatchObject({ status: 400, param: 'text.format.schema.minimum' });
    await expect(client.responses.create({ model: MODEL_ID, input: 'x', text: { format: { type: 'json_schema', schema: { type: 'integer' } } as never } }))
      .rejects.toMatchObject({ status: 400, param: 'text.format.name' });
    await expect(client.responses.create({ model: MODEL_ID, input: 'x', text: { format: { type: 'json_schema', name: 'n' } as never } }))
      .rejects.toMatchObject({ status: 400, param: 'text.format.schema', message: expect.stringContaining('schema is required') });
    // A refusal the gpu-node makes speaks of text.format here too.
    await expect(client.responses.create({ model: MODEL_ID, input: 'x', text: { format: { type: 'json_schema', name: 'n', schema: { const: 'café' } } } }))
      .rejects.toMatchObject({ status: 400, param: 'text.format' });
  });

  it('holds a batch line to its response_format, and lists a line whose schema it refuses as invalid', async () => {
    const line = (customId: string, responseFormat: unknown) => chatBatchLine(customId, { model: MODEL_ID, messages: ask, max_tokens: 200, temperature: 0, response_format: responseFormat });
    const { batch, output, errors } = await runChatBatch(client, stack, [line('held', personFormat), line('refused', { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: 'a' } } })]);
    expect(batch.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    expect(output.map((entry) => entry.custom_id)).toEqual(['held']);
    expectPerson(output[0].response.body.choices[0].message.content);
    expect(errors.map((entry) => [entry.custom_id, entry.error.code])).toEqual([['refused', 'invalid_value']]);
  });
});
