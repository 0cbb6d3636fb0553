/**
 * A batch whose window ends while it runs expires with the results it has: the requests that
 * finished are in the output file, the others in the error file as batch_expired, each once.
 * (The window is shortened with BAMBA_BATCH_WINDOW_SECONDS; on the wire it stays `24h`.)
 */
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startTestStack({ gpuNodes: 1, workers: 1, gatewayEnv: { BAMBA_BATCH_WINDOW_SECONDS: '3' }, workersEnv: { BAMBA_BATCH_MAX_IN_FLIGHT: '1' } });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused-without-keys', maxRetries: 0 });
});
afterAll(async () => stack?.stop());

describe('batch expiry', () => {
  it('expires a batch at the end of its window, with partial results', async () => {
    const count = 200; // one at a time: far more than 3 s of work
    const lines = Array.from({ length: count }, (_, index) => JSON.stringify({ custom_id: `e${index}`, method: 'POST', url: '/v1/chat/completions', body: { model: MODEL_ID, messages: [{ role: 'user', content: `slow ${index}` }], max_tokens: 64, temperature: 0 } }));
    const input = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'slow.jsonl'), purpose: 'batch' });
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect(created.expires_at! - created.created_at).toBeLessThanOrEqual(4);
    const batch = await stack.waitFor('the batch to expire', async () => {
      const now = await client.batches.retrieve(created.id);
      return ['completed', 'expired', 'failed', 'cancelled'].includes(now.status) ? now : undefined;
    }, 60_000);
    expect(batch.status).toBe('expired');
    expect(batch.expired_at).not.toBeNull();
    const read = async (fileId: string | null | undefined) => (fileId ? (await (await client.files.content(fileId)).text()).trim().split('\n').map((line) => JSON.parse(line) as { custom_id: string; error: { code: string } | null }) : []);
    const output = await read(batch.output_file_id);
    const errors = await read(batch.error_file_id);
    expect(output.length).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((line) => line.error?.code === 'batch_expired')).toBe(true);
    expect([...output, ...errors].map((line) => line.custom_id).sort()).toEqual(lines.map((_, index) => `e${index}`).sort());
    expect(batch.request_counts).toEqual({ total: count, completed: output.length, failed: errors.length });
  });
});
