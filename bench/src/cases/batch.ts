/**
 * Batches: (1) 64 requests sharing a 2K-token prefix (one system prompt, different questions)
 * run by the workers with shared-prefix seeding and without (two workers processes, one after
 * the other, each with its own prefix so neither finds the other's state), wall time from
 * create to completed; (2) time to first token of interactive requests while a 256-request batch
 * runs, against the same requests on the idle stack. `small` preset, one gpu-node, through the
 * HTTP API. H characters of the system prompt are H tokens.
 */
import { resolve } from 'node:path';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { startTestStack, type TestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';
import { timedStream } from '../timed-stream.js';

const MODEL_ID = 'bamba-small';

interface BatchWire { id: string; status: string; request_counts: { total: number; completed: number; failed: number } }

async function api<T>(stack: TestStack, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(`${stack.url}${path}`, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function submit(stack: TestStack, bodies: unknown[]): Promise<BatchWire> {
  const form = new FormData();
  form.set('purpose', 'batch');
  form.set('file', new Blob([bodies.map((body, index) => JSON.stringify({ custom_id: `r${index}`, method: 'POST', url: '/v1/chat/completions', body })).join('\n')]), 'bench.jsonl');
  const file = await api<{ id: string }>(stack, '/v1/files', { method: 'POST', body: form });
  return api<BatchWire>(stack, '/v1/batches', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }) });
}

async function waitFor(stack: TestStack, batchId: string, until: (batch: BatchWire) => boolean): Promise<BatchWire> {
  for (;;) {
    const batch = await api<BatchWire>(stack, `/v1/batches/${batchId}`);
    if (until(batch)) return batch;
    await new Promise((done) => setTimeout(done, 100));
  }
}

const finished = (batch: BatchWire) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status);

/** Wall time of one batch of `count` requests sharing a `prefixTokens`-token system prompt. */
async function sharedPrefixBatch(stack: TestStack, workers: string, env: Record<string, string>, count: number, prefixTokens: number, tag: string): Promise<{ seconds: number; cachedMedian: number }> {
  await stack.startWorkers(workers, env);
  try {
    const system = `${tag} ${'Bamba is a hybrid Mamba2 and attention model. '.repeat(Math.ceil(prefixTokens / 47))}`.slice(0, prefixTokens);
    const bodies = Array.from({ length: count }, (_, index) => ({ model: MODEL_ID, messages: [{ role: 'system', content: system }, { role: 'user', content: `Question ${index}?` }], max_tokens: 8, temperature: 0 }));
    const started = performance.now();
    const created = await submit(stack, bodies);
    const batch = await waitFor(stack, created.id, finished);
    const seconds = (performance.now() - started) / 1000;
    if (batch.status !== 'completed' || batch.request_counts.completed !== count) throw new Error(`batch ended ${batch.status} with ${JSON.stringify(batch.request_counts)}`);
    const output = await (await fetch(`${stack.url}/v1/files/${(await api<{ output_file_id: string }>(stack, `/v1/batches/${created.id}`)).output_file_id}/content`)).text();
    const cached = output.trim().split('\n').map((line) => (JSON.parse(line) as { response: { body: { usage: { prompt_tokens_details: { cached_tokens: number } } } } }).response.body.usage.prompt_tokens_details.cached_tokens);
    return { seconds, cachedMedian: median(cached) };
  } finally {
    await stack.stopWorkers(workers);
  }
}

async function interactiveTtfts(stack: TestStack, count: number, tag: string): Promise<number[]> {
  const ttfts: number[] = [];
  for (let index = 0; index < count; index++) {
    const turn = await timedStream(stack.url, '/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'user', content: `${tag} interactive question ${index}: what is a state space model?` }], max_tokens: 4, temperature: 0 }, '"content"');
    ttfts.push(turn.ttftMs);
  }
  return ttfts;
}

export const batchCase: BenchCase = {
  name: 'batch',
  description: '64 requests sharing a 2K-token prefix with and without prefix seeding; interactive TTFT while a 256-request batch runs vs idle, small',
  async run({ quick }) {
    const modelPath = ensureCachedModel(resolve('.cache'), 'small', DEFAULT_MODEL_SEED);
    const count = quick ? 8 : 64;
    const prefixTokens = quick ? 256 : 2048;
    const loadCount = quick ? 24 : 256;
    const probes = quick ? 3 : 10;
    const stack = await startTestStack({ model: { path: modelPath, id: MODEL_ID }, nodeEnv: { BAMBA_SLOTS: '4', BAMBA_CONTEXT_SIZE: String(prefixTokens + 512), BAMBA_THREADS: '1' } });
    try {
      progress(`${count} requests with a ${prefixTokens}-token shared prefix, seeded`);
      const shared = await sharedPrefixBatch(stack, 'bench-shared', { BAMBA_BATCH_SHARED_PREFIXES: 'true' }, count, prefixTokens, 'A');
      progress(`${count} requests with a ${prefixTokens}-token shared prefix, not seeded`);
      const plain = await sharedPrefixBatch(stack, 'bench-plain', { BAMBA_BATCH_SHARED_PREFIXES: 'false' }, count, prefixTokens, 'B');

      progress(`interactive time to first token, idle (${probes} requests)`);
      const idle = await interactiveTtfts(stack, probes, 'idle');
      await stack.startWorkers('bench-load');
      try {
        const bodies = Array.from({ length: loadCount }, (_, index) => ({ model: MODEL_ID, messages: [{ role: 'user', content: `Batch request ${index}: describe a hybrid model.` }], max_tokens: 32, temperature: 0 }));
        const load = await submit(stack, bodies);
        await waitFor(stack, load.id, (batch) => batch.request_counts.completed > 0 || finished(batch));
        progress(`interactive time to first token while a ${loadCount}-request batch runs (${probes} requests)`);
        const busy = await interactiveTtfts(stack, probes, 'busy');
        const during = await api<BatchWire>(stack, `/v1/batches/${load.id}`);
        await api(stack, `/v1/batches/${load.id}/cancel`, { method: 'POST' });
        await waitFor(stack, load.id, finished);
        const rows = [
          ['idle', round(median(idle), 1), round(Math.max(...idle), 1), '—'],
          [`during a ${loadCount}-request batch (${during.request_counts.completed} done when measured)`, round(median(busy), 1), round(Math.max(...busy), 1), round(median(busy) / median(idle), 2)],
        ];
        return {
          raw: { shared, plain, idle, busy, count, prefixTokens, loadCount },
          tables: [
            {
              title: `Batch: ${count} requests sharing a ${prefixTokens}-token prefix (small preset, 1 gpu-node, 4 slots)`,
              note: 'Wall time from batch creation to completion, through the HTTP API and the workers. Seeded: the workers save the state at the end of the shared system prompt once (a prefill-only job) and every request resumes from it. Not seeded: every request evaluates the whole prompt. Each run has its own prefix.',
              columns: ['run', 'wall time (s)', 'median cached tokens per request', 'not seeded / seeded'],
              rows: [
                ['seeded', round(shared.seconds, 1), shared.cachedMedian, round(plain.seconds / shared.seconds, 2)],
                ['not seeded', round(plain.seconds, 1), plain.cachedMedian, '—'],
              ],
            },
            {
              title: 'Batch: interactive time to first token while a batch runs (small preset, 1 gpu-node, 4 slots)',
              note: `${probes} interactive chat requests one after another (short prompt, streaming), median and worst, on the idle stack and while a ${loadCount}-request batch runs (32 tokens per request; the workers keep at most 3 batch requests in flight, one slot free). The batch is cancelled afterwards.`,
              columns: ['while', 'median TTFT (ms)', 'worst TTFT (ms)', 'busy / idle'],
              rows,
            },
          ],
        };
      } finally {
        await stack.stopWorkers('bench-load');
      }
    } finally {
      await stack.stop();
    }
  },
};
