/**
 * `bamba batch`: submit a JSONL file of requests as a batch, follow it, and fetch its results,
 * through a gateway's HTTP API (any gateway of the region; the API key decides the tenant).
 *
 *   bamba batch submit FILE.jsonl [--wait] [--batch-endpoint /v1/completions]
 *   bamba batch status BATCH_ID
 *   bamba batch results BATCH_ID [--out FILE] [--errors FILE]
 *
 * `--url` (BAMBA_URL, default http://127.0.0.1:$PORT or :8080) and `--api-key` (BAMBA_API_KEY).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { isFinishedBatch } from '@bamba/shared';
import { applyFlags } from '../flags.js';
import { createProgressBar } from '../progress-bar.js';

/** The variables (and so the flags) `bamba batch` accepts. */
export const BATCH_OPTIONS: ReadonlySet<string> = new Set(['BAMBA_URL', 'BAMBA_API_KEY', 'BAMBA_BATCH_ENDPOINT', 'BAMBA_OUT', 'BAMBA_ERRORS', 'PORT']);

const USAGE = `usage:
  bamba batch submit FILE.jsonl [--wait] [--batch-endpoint /v1/chat/completions]
  bamba batch status BATCH_ID
  bamba batch results BATCH_ID [--out FILE] [--errors FILE]
options: --url URL (BAMBA_URL), --api-key KEY (BAMBA_API_KEY)
`;

const POLL_MS = 1000;

interface BatchWire {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  output_file_id: string | null;
  error_file_id: string | null;
  errors: { data: Array<{ line: number | null; code: string; message: string }> } | null;
}

class Gateway {
  constructor(private readonly url: string, private readonly apiKey: string | undefined) {}

  async call(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.apiKey) headers.set('authorization', `Bearer ${this.apiKey}`);
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { ...init, headers });
    } catch (error) {
      throw new Error(`cannot reach ${this.url} (${(error as Error).message}); is the stack running? (--url)`);
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
      throw new Error(`${response.status}: ${body?.error?.message ?? response.statusText}`);
    }
    return response;
  }

  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    return (await (await this.call(path, init)).json()) as T;
  }
}

async function waitForBatch(gateway: Gateway, batchId: string): Promise<BatchWire> {
  const bar = createProgressBar(batchId);
  for (;;) {
    const batch = await gateway.json<BatchWire>(`/v1/batches/${batchId}`);
    const { total, completed, failed } = batch.request_counts;
    if (total > 0) bar.draw((completed + failed) / total, `${completed} done, ${failed} failed of ${total} (${batch.status})`);
    if (isFinishedBatch(batch.status)) {
      bar.end();
      return batch;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A batch whose every request failed: it completes all the same (OpenAI's rule), but nothing succeeded. */
const noneSucceeded = (batch: BatchWire) => batch.request_counts.completed === 0 && batch.request_counts.failed > 0;

function summary(batch: BatchWire): string {
  const { total, completed, failed } = batch.request_counts;
  const lines = [`${batch.id}: ${batch.status}, ${completed} completed, ${failed} failed of ${total}`];
  for (const error of batch.errors?.data.slice(0, 5) ?? []) lines.push(`  line ${error.line ?? '-'}: ${error.code}: ${error.message}`);
  const saves = [...(batch.output_file_id ? ['--out results.jsonl'] : []), ...(batch.error_file_id ? ['--errors errors.jsonl'] : [])];
  if (saves.length > 0) lines.push(`  ${batch.output_file_id ? 'results' : 'errors'}: bamba batch results ${batch.id} ${saves.join(' ')}`);
  if (noneSucceeded(batch)) lines.push('  no request succeeded');
  return `${lines.join('\n')}\n`;
}

export async function runBatchCommand(args: string[]): Promise<number> {
  const [action, target, ...rest] = args;
  const wait = rest.includes('--wait');
  let settings: Record<string, string | undefined>;
  try {
    settings = applyFlags(rest.filter((arg) => arg !== '--wait'), process.env, BATCH_OPTIONS);
  } catch (error) {
    process.stderr.write(`bamba batch: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!action || !target || !['submit', 'status', 'results'].includes(action)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const gateway = new Gateway((settings.BAMBA_URL ?? `http://127.0.0.1:${settings.PORT ?? 8080}`).replace(/\/$/, ''), settings.BAMBA_API_KEY);
  try {
    if (action === 'submit') {
      let content: Buffer;
      try {
        content = readFileSync(target);
      } catch (error) {
        throw new Error(`cannot read ${target}: ${(error as Error).message}`);
      }
      const form = new FormData();
      form.set('purpose', 'batch');
      form.set('file', new Blob([content]), basename(target));
      const file = await gateway.json<{ id: string }>('/v1/files', { method: 'POST', body: form });
      const batch = await gateway.json<BatchWire>('/v1/batches', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input_file_id: file.id, endpoint: settings.BAMBA_BATCH_ENDPOINT ?? '/v1/chat/completions', completion_window: '24h' }),
      });
      process.stdout.write(`${batch.id}\n`);
      if (!wait) return 0;
      const done = await waitForBatch(gateway, batch.id);
      process.stderr.write(summary(done));
      return done.status === 'completed' && !noneSucceeded(done) ? 0 : 1;
    }
    const batch = await gateway.json<BatchWire>(`/v1/batches/${encodeURIComponent(target)}`);
    if (action === 'status') {
      process.stdout.write(`${JSON.stringify(batch, null, 2)}\n`);
      return 0;
    }
    if (!isFinishedBatch(batch.status)) throw new Error(`${batch.id} is ${batch.status}: results come when it has finished (bamba batch status ${batch.id})`);
    const output = batch.output_file_id ? Buffer.from(await (await gateway.call(`/v1/files/${batch.output_file_id}/content`)).arrayBuffer()) : Buffer.alloc(0);
    if (settings.BAMBA_OUT) {
      writeFileSync(settings.BAMBA_OUT, output);
      process.stderr.write(`${batch.request_counts.completed} results written to ${settings.BAMBA_OUT}\n`);
    } else {
      process.stdout.write(output);
    }
    if (batch.error_file_id) {
      const errors = Buffer.from(await (await gateway.call(`/v1/files/${batch.error_file_id}/content`)).arrayBuffer());
      if (settings.BAMBA_ERRORS) writeFileSync(settings.BAMBA_ERRORS, errors);
      process.stderr.write(`${batch.request_counts.failed} requests failed${settings.BAMBA_ERRORS ? `: written to ${settings.BAMBA_ERRORS}` : ' (--errors FILE saves them)'}\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`bamba batch: ${(error as Error).message}\n`);
    return 1;
  }
}
