/**
 * A batch carries on across restarts of the parts around it: the region's Redis SIGKILLed and
 * started again on its append-only file, and the gateway replaced, mid-batch; every request is
 * answered once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let replacement: ChildProcess | null = null;

beforeAll(async () => {
  stack = await startTestStack({ gpuNodes: 1, workers: 1, redisAppendOnly: true, gatewayProcess: true });
});
afterAll(async () => {
  replacement?.kill('SIGTERM');
  await stack?.stop();
});

describe('batch across restarts', () => {
  it('loses and duplicates nothing when Redis is killed and restarted and the gateway replaced mid-batch', async () => {
    let client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused-without-keys', maxRetries: 0 });
    const count = 40;
    const lines = Array.from({ length: count }, (_, index) => JSON.stringify({ custom_id: `r${index}`, method: 'POST', url: '/v1/chat/completions', body: { model: MODEL_ID, messages: [{ role: 'user', content: `restart ${index}` }], max_tokens: 32, temperature: 0 } }));
    const input = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'restart.jsonl'), purpose: 'batch' });
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await stack.waitFor('some requests done', async () => ((await client.batches.retrieve(created.id)).request_counts!.completed >= 5 ? true : undefined));

    await stack.crashRedis();
    await stack.gateway.close(); // a new gateway process answers from here on
    const replacement = await startReplacementGateway(stack);
    client = new OpenAI({ baseURL: `${replacement}/v1`, apiKey: 'unused-without-keys', maxRetries: 2 });

    const batch = await stack.waitFor('the batch to finish', async () => {
      const now = await client.batches.retrieve(created.id).catch(() => null);
      return now && ['completed', 'failed', 'expired', 'cancelled'].includes(now.status) ? now : undefined;
    }, 180_000);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: count, completed: count, failed: 0 });
    const output = (await (await client.files.content(batch.output_file_id!)).text()).trim().split('\n').map((line) => JSON.parse(line) as { custom_id: string });
    expect(output.map((line) => line.custom_id)).toEqual(lines.map((_, index) => `r${index}`));
  });
});

/** A second `bamba gateway` on the same region, as a deployment would start one. */
async function startReplacementGateway(running: TestStack): Promise<string> {
  const port = await new Promise<number>((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      server.close(() => done(address.port));
    });
  });
  replacement = spawn(process.execPath, ['cli/dist/main.js', 'gateway'], { env: { ...process.env, ...running.gatewayEnv, PORT: String(port), BAMBA_LOG_LEVEL: 'warn' }, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await running.waitFor('the replacement gateway', async () => ((await fetch(`${url}/healthz`).catch(() => null))?.ok ? true : undefined));
  return url;
}
