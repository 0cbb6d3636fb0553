/**
 * The Batch API with the official `openai` client against real processes (Redis, gateway,
 * gpu-node, workers): every request of a batch answered once, exactly as the same request sent
 * interactively; invalid lines in the error file with their line numbers while the valid ones
 * run; cancel; list pagination; tenants apart; a gpu-node killed and the workers process killed
 * mid-batch lose no request and duplicate none.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
      // Longer than an interactive body may be (BAMBA_MAX_BODY_BYTES, 1 MiB): refused, never queued.
      requestLine('huge', { ...chatBody(4), messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] }),
      // One line, one answer: more choices are more lines.
      requestLine('two', { ...chatBody(5), n: 2 }),
    ];
    const input = await uploadLines(lines);
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { purpose: 'test' } });
    expect(created).toMatchObject({ object: 'batch', input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { purpose: 'test' } });
    expect(['validating', 'in_progress']).toContain(created.status);

    const batch = await waitForBatch(created.id, finished);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 10, completed: 4, failed: 6 });
    expect(batch.errors?.data?.map((error) => [error.line, error.code])).toEqual([[2, 'invalid_json'], [4, 'invalid_url'], [5, 'duplicate_custom_id'], [7, 'invalid_value'], [9, 'request_too_large'], [10, 'invalid_request']]);
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at);

    const output = await outputLines(batch.output_file_id);
    expect(output.map((line) => line.custom_id)).toEqual(['q0', 'q1', 'q2', 'q3']);
    for (const line of output) {
      const index = Number(line.custom_id.slice(1));
      const interactive = await client.chat.completions.create(chatBody(index) as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(line.response.status_code).toBe(200);
      expect(line.response.body.object).toBe('chat.completion');
      expect(line.response.body.system_fingerprint).toMatch(/^fp_/);
      expect(line.response.body.system_fingerprint).toBe(interactive.system_fingerprint);
      expect(line.response.body.choices).toEqual(JSON.parse(JSON.stringify(interactive.choices)));
      expect(line.response.body.usage.completion_tokens).toBe(interactive.usage!.completion_tokens);
      expect(line.error).toBeNull();
    }
    const errors = await outputLines(batch.error_file_id);
    expect(errors.map((line) => [line.custom_id, line.error.line, line.error.code])).toEqual([[null, 2, 'invalid_json'], ['wrong-url', 4, 'invalid_url'], ['q0', 5, 'duplicate_custom_id'], ['bad-body', 7, 'invalid_value'], ['huge', 9, 'request_too_large'], ['two', 10, 'invalid_request']]);
    expect(errors.at(-1)?.error.message).toMatch(/n > 1 is not supported in a batch/);
    // OpenAI's model and usage fields: the sums of the completed requests' usage.
    const sum = (pick: (usage: Record<string, any>) => number) => output.reduce((total, line) => total + pick(line.response.body.usage), 0);
    expect(batch.model).toBe(MODEL_ID);
    expect(batch.usage).toEqual({
      input_tokens: sum((usage) => usage.prompt_tokens),
      input_tokens_details: { cached_tokens: sum((usage) => usage.prompt_tokens_details.cached_tokens) },
      output_tokens: sum((usage) => usage.completion_tokens),
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: sum((usage) => usage.total_tokens),
    });
    expect(batch.usage!.output_tokens).toBe(4 * 12);
  });

  it('answers /v1/responses lines with the response object the interactive API gives (not stored); refuses lines that need stored state', async () => {
    const bodies = [
      { model: MODEL_ID, instructions: 'You answer briefly.', input: 'First question?', max_output_tokens: 10, temperature: 0 },
      { model: MODEL_ID, input: [{ role: 'user', content: 'Second question?' }], max_output_tokens: 200, temperature: 0, include: ['message.output_text.logprobs'], top_logprobs: 2, metadata: { k: 'v' } },
    ];
    const lines = [
      requestLine('r0', bodies[0], '/v1/responses'),
      requestLine('r1', bodies[1], '/v1/responses'),
      requestLine('parent', { ...bodies[0], previous_response_id: 'resp_eu_0123456789abcdef0123456789abcdef' }, '/v1/responses'),
      requestLine('later', { ...bodies[0], background: true }, '/v1/responses'),
      requestLine('chat', chatBody(1), '/v1/chat/completions'),
      requestLine('stored', { ...bodies[0], store: true }, '/v1/responses'),
      // A function call's output must answer a call of the line's own input (as interactively).
      requestLine('orphan', { ...bodies[0], input: [{ type: 'function_call_output', call_id: 'call_nowhere', output: '42' }] }, '/v1/responses'),
      // Valid, but too long for the gpu-node's context: a failed request, named in the API's terms.
      requestLine('long', { ...bodies[0], input: [{ role: 'user', content: 'y'.repeat(5000) }] }, '/v1/responses'),
    ];
    const created = await client.batches.create({ input_file_id: (await uploadLines(lines)).id, endpoint: '/v1/responses', completion_window: '24h' });
    const batch = await waitForBatch(created.id, finished);
    expect(batch.request_counts).toEqual({ total: 8, completed: 2, failed: 6 });
    expect(batch.errors?.data?.map((error) => [error.line, error.param])).toEqual([[3, 'body.previous_response_id'], [4, 'body.background'], [5, 'url'], [6, 'body.store'], [7, 'body.input[0].call_id']]);
    const failed = (await outputLines(batch.error_file_id)).find((line) => line.custom_id === 'long')!;
    expect(failed.response.status_code).toBe(400);
    expect(failed.response.body.error).toMatchObject({ code: 'context_length_exceeded', param: 'input' });
    const output = await outputLines(batch.output_file_id);
    expect(output.map((line) => line.custom_id)).toEqual(['r0', 'r1']);
    for (const [index, line] of output.entries()) {
      const interactive = await client.responses.create({ ...bodies[index], store: false } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
      const body = line.response.body;
      expect(line.response.status_code).toBe(200);
      expect(body).toMatchObject({ object: 'response', status: interactive.status, store: false, model: MODEL_ID, instructions: interactive.instructions, max_output_tokens: interactive.max_output_tokens, metadata: interactive.metadata, top_logprobs: interactive.top_logprobs });
      expect(body.id).toMatch(/^resp_/);
      // The same answer and the same tokens' log probabilities (to float noise: a batch's requests
      // are evaluated beside others); the ids are the line's own.
      const logprobsOf = (items: Array<Record<string, any>>) => items.flatMap((item) => item.content?.flatMap((part: Record<string, any>) => part.logprobs ?? []) ?? []);
      const plain = (items: Array<Record<string, any>>) => items.map(({ id: _id, content, ...rest }) => ({ ...rest, content: content?.map(({ logprobs: _logprobs, ...part }: Record<string, any>) => part) }));
      const expected = JSON.parse(JSON.stringify(interactive.output)) as Array<Record<string, any>>;
      expect(plain(body.output)).toEqual(plain(expected));
      const [got, want] = [logprobsOf(body.output), logprobsOf(expected)];
      expect(got.map((entry) => entry.token)).toEqual(want.map((entry) => entry.token));
      got.forEach((entry, place) => expect(entry.logprob).toBeCloseTo(want[place].logprob, 3));
      expect(got.length).toBe(index === 1 ? body.usage.output_tokens : 0);
      expect(body.output[0].content[0].text).toBe(interactive.output_text);
      expect(interactive.output_text.length).toBeGreaterThan(0);
      expect(body.usage).toEqual(JSON.parse(JSON.stringify(interactive.usage)));
      expect(body.incomplete_details).toEqual(interactive.incomplete_details);
    }
    // Not stored: retrieving one by its id finds nothing.
    await expect(client.responses.retrieve(output[0]!.response.body.id)).rejects.toMatchObject({ status: 404 });
  });

  it('evaluates a prefix its requests share once: each resumes from it, answering as interactively', async () => {
    const shared = [
      { role: 'system', content: 'You are a careful assistant. Answer in one short line.' },
      { role: 'user', content: 'Example question about hybrids?' },
      { role: 'assistant', content: 'Example answer about hybrids.' },
    ];
    const body = (index: number) => ({ model: MODEL_ID, messages: [...shared, { role: 'user', content: `Real question ${index}?` }], max_tokens: 10, temperature: 0 });
    const lines = Array.from({ length: 6 }, (_, index) => requestLine(`s${index}`, body(index)));
    const created = await client.batches.create({ input_file_id: (await uploadLines(lines)).id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(created.id, finished);
    expect(batch.status).toBe('completed');
    const output = await outputLines(batch.output_file_id);
    const cached = output.map((line) => line.response.body.usage.prompt_tokens_details.cached_tokens as number);
    expect(cached[0]).toBeGreaterThan(0);
    expect(new Set(cached).size).toBe(1); // every request resumed from the same shared boundary
    expect(cached[0]).toBeLessThan(output[0]!.response.body.usage.prompt_tokens);
    const interactive = await client.chat.completions.create(body(3) as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(output[3]!.response.body.choices[0].message.content).toBe(interactive.choices[0]!.message.content);
  });

  it('cancels: queued requests are taken back, running ones finish, every request is in one file once', async () => {
    const lines = Array.from({ length: 48 }, (_, index) => requestLine(`c${index}`, { ...chatBody(index), max_tokens: 48 }));
    const input = await uploadLines(lines);
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitForBatch(created.id, (batch) => batch.request_counts!.completed > 0);
    // Its input cannot go while it runs (a restarted workers process reads it again).
    // Refused at once: the official client does not retry it (a retry could not end it).
    const refused = await client.files.delete(input.id).then(() => null, (error: unknown) => error);
    expect(refused).toMatchObject({ status: 409, code: 'file_in_use' });
    expect((refused as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false');
    const cancelling = await client.batches.cancel(created.id);
    expect(['cancelling', 'cancelled']).toContain(cancelling.status);
    const batch = await waitForBatch(created.id, finished);
    expect(batch.status).toBe('cancelled');
    expect(batch.cancelled_at).not.toBeNull();
    const output = await outputLines(batch.output_file_id);
    const errors = await outputLines(batch.error_file_id);
    expect(output.length).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0); // the batch stopped before its end
    expect(errors.every((line) => line.error.code === 'batch_cancelled')).toBe(true);
    expect([...output, ...errors].map((line) => line.custom_id).sort()).toEqual(lines.map((_, index) => `c${index}`).sort());
    expect(batch.request_counts).toEqual({ total: 48, completed: output.length, failed: errors.length });
    // Cancelling again changes nothing; the input file may go now.
    expect(await client.batches.cancel(created.id)).toEqual(batch);
    expect(await client.files.delete(input.id)).toMatchObject({ deleted: true });
  });

  it('lists batches newest first, page by page, and keeps tenants apart', async () => {
    const input = await uploadLines([requestLine('only', chatBody(0))]);
    const made: string[] = [];
    for (let index = 0; index < 3; index++) made.push((await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
    const page = await client.batches.list({ limit: 2 });
    expect(page.data.map((batch) => batch.id)).toEqual([made[2], made[1]]);
    expect(page.has_more).toBe(true);
    const next = await client.batches.list({ limit: 2, after: made[1] });
    expect(next.data[0]!.id).toBe(made[0]);

    await expect(other.batches.retrieve(made[0]!)).rejects.toMatchObject({ status: 404 });
    await expect(other.batches.cancel(made[0]!)).rejects.toMatchObject({ status: 404 });
    await expect(other.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 400, param: 'input_file_id' });
    expect((await other.batches.list()).data).toEqual([]);
    for (const id of made) await waitForBatch(id, finished);
    // A completed batch cannot be cancelled.
    await expect(client.batches.cancel(made[0]!)).rejects.toMatchObject({ status: 400, code: 'batch_not_cancellable' });
  });

  it('refuses bad create requests with 400 naming the field', async () => {
    const input = await uploadLines([requestLine('x', chatBody(0))]);
    await expect(client.batches.create({ input_file_id: input.id, endpoint: '/v1/embeddings' as '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 400, param: 'endpoint' });
    await expect(client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '48h' as '24h' })).rejects.toMatchObject({ status: 400, param: 'completion_window' });
    await expect(client.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 400, param: 'input_file_id' });
    await expect(client.batches.retrieve('batch_nope')).rejects.toMatchObject({ status: 404 });
    // Output files are kept until deleted: an expiry the client counts on is refused, not ignored.
    await expect(client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', output_expires_after: { anchor: 'created_at', seconds: 3600 } })).rejects.toMatchObject({ status: 400, param: 'output_expires_after', code: 'unsupported_parameter' });
  });

  it('reads an input file that starts with a byte-order mark (as Windows tools write them): its first request runs', async () => {
    const input = await client.files.create({ file: await toFile(Buffer.from(`\uFEFF${requestLine('first', chatBody(0))}\r\n${requestLine('second', chatBody(1))}\r\n`), 'bom.jsonl'), purpose: 'batch' });
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(created.id, finished);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 } });
    expect((await outputLines(batch.output_file_id)).map((line) => line.custom_id)).toEqual(['first', 'second']);
  });

  it('loses and duplicates nothing when the gpu-node and the workers process are killed mid-batch', async () => {
    const count = 40;
    const lines = Array.from({ length: count }, (_, index) => requestLine(`k${index}`, { ...chatBody(index), max_tokens: 32 }));
    const created = await client.batches.create({ input_file_id: (await uploadLines(lines)).id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitForBatch(created.id, (batch) => batch.request_counts!.completed >= 5);
    stack.nodes.get('node-0')!.kill('SIGKILL');
    await stack.stopWorkers('workers-0', 'SIGKILL');
    const during = await client.batches.retrieve(created.id);
    expect(during.status).toBe('in_progress'); // both died mid-batch
    expect(during.request_counts!.completed).toBeLessThan(count);
    await stack.startNode('node-1');
    await stack.startWorkers('workers-1');
    const batch = await waitForBatch(created.id, finished, 180_000);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: count, completed: count, failed: 0 });
    const output = await outputLines(batch.output_file_id);
    expect(output.map((line) => line.custom_id)).toEqual(lines.map((_, index) => `k${index}`)); // each once, in input order
    // Usage counts each result once too (it is counted with the result, by the script that records it).
    expect(batch.usage).toMatchObject({ output_tokens: output.reduce((total, line) => total + line.response.body.usage.completion_tokens, 0), input_tokens: output.reduce((total, line) => total + line.response.body.usage.prompt_tokens, 0) });
    for (const index of [0, Math.floor(count / 2), count - 1]) {
      const interactive = await client.chat.completions.create({ ...chatBody(index), max_tokens: 32 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(output[index]!.response.body.choices[0].message.content).toBe(interactive.choices[0]!.message.content);
    }
  });

  it('leaves a batch whose input this workers process cannot read to run again, instead of failing it', async () => {
    // A workers process whose BAMBA_FILES_DIR is not the gateway's sees the record but not the bytes.
    const file = await uploadLines([requestLine('m0', chatBody(40)), requestLine('m1', chatBody(41))]);
    const bytesPath = join(stack.filesDir, file.id);
    const hidden = `${bytesPath}.hidden`;
    renameSync(bytesPath, hidden);
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    // BullMQ counts the runs that threw (the job's `atm` field): two, and the batch is still waiting.
    const jobKey = `${stack.keys.bullPrefix}:${stack.keys.batchQueue}:${batch.id}`;
    await stack.waitFor('two runs of the batch', async () => (Number(await stack.redis.hget(jobKey, 'atm')) >= 2 ? true : undefined), 30_000);
    expect((await client.batches.retrieve(batch.id)).status).toBe('validating');
    renameSync(hidden, bytesPath); // the bytes are back (another workers process could read them)
    const done = await waitForBatch(batch.id, finished);
    expect(done.status).toBe('completed');
    expect((await outputLines(done.output_file_id)).map((line) => line.custom_id)).toEqual(['m0', 'm1']);

    // Cancelled while no workers process can read its input, before anything ran: it ends cancelled, not failed.
    const unread = await uploadLines([requestLine('c0', chatBody(42))]);
    renameSync(join(stack.filesDir, unread.id), join(stack.filesDir, `${unread.id}.hidden`));
    const stuck = await client.batches.create({ input_file_id: unread.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await stack.waitFor('a run of the batch', async () => (Number(await stack.redis.hget(`${stack.keys.bullPrefix}:${stack.keys.batchQueue}:${stuck.id}`, 'atm')) >= 1 ? true : undefined), 30_000);
    await client.batches.cancel(stuck.id);
    expect((await waitForBatch(stuck.id, finished)).status).toBe('cancelled');
  });

  it('fails a batch of more than 50,000 requests, counting lines before checking any', async () => {
    const input = await uploadLines(Array.from({ length: 50_001 }, () => 'x'));
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(created.id, finished);
    expect(batch.status).toBe('failed');
    expect(batch.errors?.data?.[0]).toMatchObject({ code: 'too_many_requests', param: 'input_file_id' });
    expect(batch.output_file_id).toBeNull();
  });

  it('counts batches and their requests in /metrics and /status.json', async () => {
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? NaN);
    expect(value(/^bamba_batches\{status="completed"\} (\d+)$/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^bamba_batches\{status="cancelled"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^bamba_batch_requests_finished\{outcome="completed"\} (\d+)$/m)).toBeGreaterThanOrEqual(4 + 6 + 40);
    expect(value(/^bamba_batch_completion_tokens (\d+)$/m)).toBeGreaterThan(0);
    expect(metrics).toMatch(/^bamba_batch_requests_in_flight \d+$/m);
    const status = (await (await fetch(`${stack.url}/status.json`)).json()) as { regions: Array<{ batches: { by_status: Record<string, number> } }> };
    expect(status.regions[0]!.batches.by_status.completed).toBe(value(/^bamba_batches\{status="completed"\} (\d+)$/m));
  });

  it('runs from the command line: bamba batch submit --wait, status, results --out', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'bamba-batch-cli-'));
    const input = join(folder, 'requests.jsonl');
    writeFileSync(input, [requestLine('cli-0', chatBody(0)), requestLine('cli-1', chatBody(1)), 'not json'].join('\n'));
    // Asynchronously: the gateway answering it runs in this process.
    const cli = (...args: string[]) => new Promise<{ status: number; stdout: string; stderr: string }>((done) => {
      execFile(process.execPath, [resolve('cli/dist/main.js'), 'batch', ...args, '--url', stack.url, '--api-key', KEY_A], { encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) => {
        done({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
    const submitted = await cli('submit', input, '--wait');
    expect(submitted.status, submitted.stderr).toBe(0);
    const batchId = submitted.stdout.trim();
    expect(batchId).toMatch(/^batch_local_[0-9a-f]{32}$/);
    expect(submitted.stderr).toContain(`${batchId}: completed, 2 completed, 1 failed of 3`);
    expect(submitted.stderr).toContain('line 3: invalid_json');
    const status = await cli('status', batchId);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: batchId, status: 'completed' });
    const out = join(folder, 'results.jsonl');
    const errors = join(folder, 'errors.jsonl');
    const results = await cli('results', batchId, '--out', out, '--errors', errors);
    expect(results.status, results.stderr).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line).custom_id)).toEqual(['cli-0', 'cli-1']);
    expect(JSON.parse(readFileSync(errors, 'utf8')).error.line).toBe(3);
    const missing = await cli('status', 'batch_nope');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('404');
    // Every line invalid: the batch completes (OpenAI's rule) but the command says nothing succeeded.
    const invalid = join(folder, 'invalid.jsonl');
    writeFileSync(invalid, ['not json', requestLine('bad', { ...chatBody(0), max_tokens: -1 })].join('\n'));
    const failed = await cli('submit', invalid, '--wait');
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('completed, 0 completed, 2 failed of 2');
    expect(failed.stderr).toContain('no request succeeded');
    expect(failed.stderr).toMatch(/errors: bamba batch results batch_\S+ --errors errors\.jsonl/);
  });
});
