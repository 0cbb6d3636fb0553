/**
 * Runs one batch from wherever it stands: checks its input file line by line (again on every
 * run: the file does not change, so the verdicts do not either), moves it to `in_progress`,
 * runs the requests that have no recorded result yet (at most as many at once as the in-flight
 * limit allows), and finalizes it: the output and error files in input order, then the final
 * status, in that order, so a crash anywhere is repaired by running it again.
 * A cancel or the end of the window stops new requests; queued ones are taken back, running ones
 * finish; the requests that never ran are written to the error file as cancelled or expired.
 */
import { batchFileId, type BatchStore, type FileStore } from '@bamba/region';
import {
  BambaError,
  batchOutputLineSchema,
  checkBatchLine,
  isFinishedBatch,
  parseWireJson,
  isRequestLine,
  MAX_BATCH_REQUESTS,
  unrunLine,
  type BatchItem,
  type BatchLineError,
  type BatchOutputLine,
  type BatchRecord,
  type ValidationDefaults,
} from '@bamba/shared';
import { outputLineId, runBatchItem, seedSharedPrefix, type BatchItemDeps } from './batch-item.js';
import { sharedPrefixes } from './shared-prefixes.js';
import type { InFlightLimit } from './in-flight-limit.js';

export interface BatchRunnerDeps extends BatchItemDeps {
  batches: BatchStore;
  files: FileStore;
  defaults: ValidationDefaults;
  /** Bytes one input line may hold (`BAMBA_MAX_BODY_BYTES`, an interactive body's limit). */
  maxLineBytes: number;
  inFlight: InFlightLimit;
  /** Seed the prefixes requests share, so each is evaluated once (`BAMBA_BATCH_SHARED_PREFIXES`). */
  sharePrefixes: boolean;
  log: (line: string) => void;
  /** Told about each finished request (for metrics). */
  onResult?: (outcome: 'completed' | 'failed', completionTokens: number) => void;
}

/** Invalid lines kept on the batch record (all of them are in the error file). */
const ERRORS_ON_RECORD = 100;
/** How often a running batch looks at its own status (cancel) and the clock (expiry). */
const STATUS_CHECK_MS = 500;

interface CheckedInput {
  items: BatchItem[];
  invalid: Array<{ error: BatchLineError; customId: string | null }>;
  total: number;
}

function checkInput(content: Buffer, batch: BatchRecord, defaults: ValidationDefaults, maxLineBytes: number): CheckedInput | BatchLineError {
  // A byte-order mark (Windows tools write one) is not part of the first request.
  const lines = content.toString('utf8').replace(/^\uFEFF/, '').split('\n');
  const requestLines = lines.filter(isRequestLine).length;
  if (requestLines === 0) return { code: 'empty_file', message: 'the input file holds no requests', param: 'input_file_id', line: null };
  // Cheap count before the heavy checks.
  if (requestLines > MAX_BATCH_REQUESTS) return { code: 'too_many_requests', message: `a batch holds at most ${MAX_BATCH_REQUESTS} requests; the file has ${requestLines}`, param: 'input_file_id', line: null };
  const seen = new Set<string>();
  const checked: CheckedInput = { items: [], invalid: [], total: requestLines };
  lines.forEach((text, index) => {
    if (!isRequestLine(text)) return;
    const verdict = checkBatchLine(text, index + 1, batch.endpoint, seen, defaults, maxLineBytes);
    if ('error' in verdict) checked.invalid.push(verdict);
    else checked.items.push(verdict);
  });
  return checked;
}

/** When each batch last logged that its input is missing here. */
const missingLogged = new Map<string, number>();
function oncePerMinute(batchId: string): boolean {
  const now = Date.now();
  if (now - (missingLogged.get(batchId) ?? 0) < 60_000) return false;
  missingLogged.set(batchId, now);
  for (const [id, at] of missingLogged) if (now - at > 3_600_000) missingLogged.delete(id); // bounded
  return true;
}

export async function runBatch(deps: BatchRunnerDeps, job: { batchId: string; tenant: string }, stopping: AbortSignal): Promise<void> {
  const { batches } = deps;
  const { tenant } = job;
  let batch = await batches.get(tenant, job.batchId);
  if (!batch) return;
  if (isFinishedBatch(batch.status)) {
    // A run that died between the final status and the release: the input file is free now.
    await deps.files.release(tenant, batch.inputFileId, batch.id);
    return;
  }

  let content: Buffer | null;
  try {
    content = await deps.files.content(tenant, batch.inputFileId); // null: its record is gone
  } catch (error) {
    // The record is there but this process has no bytes for it (a workers process whose
    // BAMBA_FILES_DIR is not the gateways'): another workers process may, so the batch runs
    // again (said once a minute), until it is cancelled or its window ends. Damaged bytes fail it.
    const message = `batch ${batch.id}: input file ${batch.inputFileId} unreadable here (${(error as Error).message}); BAMBA_FILES_DIR is ${deps.files.directory}`;
    const missingHere = error instanceof BambaError && error.code === 'file_missing';
    // Cancelled before any request ran: nothing to write, it ends cancelled. (With results, their
    // custom ids are in the input, so a workers process that can read it writes them.)
    if (missingHere && batch.status === 'cancelling' && (await batches.resultLines(tenant, batch.id)).size === 0) {
      await finalize(deps, batch, { items: [], invalid: [], total: 0 }, 'cancelled');
      return;
    }
    if (missingHere && Date.now() < batch.expiresAtMs) {
      if (oncePerMinute(batch.id)) deps.log(`${message}; it runs again until another workers process can read it`);
      throw new Error(`${message}; running it again`);
    }
    deps.log(message);
    content = null;
  }
  const checked = content ? checkInput(content, batch, deps.defaults, deps.maxLineBytes) : { code: 'input_file_missing', message: `input file ${batch.inputFileId} cannot be read (deleted, or not in any workers process's BAMBA_FILES_DIR before the batch ended)`, param: 'input_file_id', line: null };
  if (!('items' in checked)) {
    deps.log(`batch ${batch.id} failed: ${checked.message}`);
    await batches.advance(tenant, batch.id, 'failed', ['validating', 'in_progress', 'cancelling'], { errors: JSON.stringify([checked]) });
    await deps.files.release(tenant, batch.inputFileId, batch.id);
    return;
  }
  if (batch.status === 'validating') {
    await batches.markInProgress(tenant, batch.id, checked.total, checked.invalid.length, checked.invalid.slice(0, ERRORS_ON_RECORD).map((entry) => entry.error), checked.items[0]?.request.model ?? null);
    deps.log(`batch ${batch.id}: ${checked.items.length} requests to run, ${checked.invalid.length} invalid lines`);
  }

  // Stop taking requests on a cancel or at the end of the window.
  const withdraw = new AbortController();
  let stopReason: 'cancelled' | 'expired' | null = null;
  /** Another run of this batch finished it (a run that lost its lock for a while, say). */
  let finishedElsewhere = false;
  const checkStatus = async () => {
    if (withdraw.signal.aborted) return;
    const now = await batches.get(tenant, job.batchId).catch(() => null);
    if (now && isFinishedBatch(now.status)) finishedElsewhere = true;
    else if (now?.status === 'cancelling') stopReason = 'cancelled';
    else if (Date.now() >= (now ?? batch!).expiresAtMs) stopReason = 'expired';
    if (stopReason || finishedElsewhere) withdraw.abort();
  };
  await checkStatus();
  const ticker = setInterval(() => void checkStatus(), STATUS_CHECK_MS);
  try {
    if (!withdraw.signal.aborted) await runItems(deps, batch, checked.items, withdraw.signal, stopping);
  } finally {
    clearInterval(ticker);
  }
  if (stopping.aborted) return; // the next run carries on

  batch = await batches.get(tenant, job.batchId);
  if (!batch || finishedElsewhere || isFinishedBatch(batch.status)) return;
  if (batch.status === 'cancelling') stopReason = 'cancelled';
  else if (!stopReason && Date.now() >= batch.expiresAtMs) stopReason = 'expired';
  if (!stopReason) {
    // Every request must have its result before the batch completes; one without (its job was
    // lost with Redis's last second, say) is run again rather than reported as not run.
    const done = await batches.resultLines(tenant, batch.id);
    if (checked.items.some((item) => !done.has(item.line))) throw new Error(`batch ${batch.id}: requests left without a result; running it again`);
  }
  await finalize(deps, batch, checked, stopReason);
}

/** Run `task` for each entry, as many at once as the in-flight limit allows; stops taking new ones when `either` aborts. */
async function inParallel<T>(deps: BatchRunnerDeps, entries: readonly T[], either: AbortSignal, task: (entry: T, index: number) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: unknown = null;
  for (const [index, entry] of entries.entries()) {
    const release = await deps.inFlight.acquire(either);
    if (!release || failure) {
      release?.();
      break;
    }
    const run = task(entry, index).catch((error: unknown) => { failure ??= error; }).finally(release);
    running.add(run);
    void run.finally(() => running.delete(run));
  }
  await Promise.all(running);
  if (failure) throw failure; // Redis went away, say: the batch runs again and carries on
}

async function runItems(deps: BatchRunnerDeps, batch: BatchRecord, items: BatchItem[], withdrawn: AbortSignal, stopping: AbortSignal): Promise<void> {
  const done = await deps.batches.resultLines(batch.tenant, batch.id);
  const pending = items.filter((item) => !done.has(item.line));
  const either = AbortSignal.any([withdrawn, stopping]);
  if (deps.sharePrefixes) {
    const prefixes = sharedPrefixes(pending);
    if (prefixes.length > 0) deps.log(`batch ${batch.id}: seeding ${prefixes.length} shared prefixes for ${prefixes.reduce((sum, prefix) => sum + prefix.requests, 0)} requests`);
    await inParallel(deps, prefixes, either, (prefix) => seedSharedPrefix(deps, batch, prefix, withdrawn, stopping));
  }
  await inParallel(deps, pending, either, async (item) => {
    const outcome = await runBatchItem(deps, batch, item, withdrawn, stopping);
    if (outcome.kind !== 'result') return;
    if (await deps.batches.recordResult(batch.tenant, batch.id, item.line, JSON.stringify(outcome.line), outcome.outcome, outcome.usage)) {
      deps.onResult?.(outcome.outcome, outcome.usage.outputTokens);
    }
  });
}

async function finalize(deps: BatchRunnerDeps, batch: BatchRecord, checked: CheckedInput, stopReason: 'cancelled' | 'expired' | null): Promise<void> {
  const { batches, files } = deps;
  // A batch that ran to its end is `finalizing` while its files are written; a cancelled one
  // stays `cancelling`, an expiring one `in_progress`, until their final status. Running this
  // again after a crash writes the same files again (their ids come from the batch).
  if (!stopReason && batch.status !== 'finalizing' && !(await batches.advance(batch.tenant, batch.id, 'finalizing', ['in_progress']))) {
    // Cancelled in the meantime: it ends cancelled (with every result it has) instead.
    const now = await batches.get(batch.tenant, batch.id);
    if (now?.status === 'cancelling') await finalize(deps, now, checked, 'cancelled');
    return;
  }
  const results = await batches.results(batch.tenant, batch.id);
  const output: BatchOutputLine[] = [];
  const errors: BatchOutputLine[] = [];
  let completed = 0;
  const byLine = new Map<number, () => void>();
  for (const entry of checked.invalid) {
    byLine.set(entry.error.line!, () => errors.push({ id: outputLineId(batch.id, entry.error.line!), custom_id: entry.customId, response: null, error: { code: entry.error.code, message: entry.error.message, line: entry.error.line! } }));
  }
  for (const item of checked.items) {
    byLine.set(item.line, () => {
      const recorded = results.get(item.line);
      if (!recorded) {
        errors.push(unrunLine(outputLineId(batch.id, item.line), item.customId, stopReason === 'expired' ? 'batch_expired' : 'batch_cancelled'));
        return;
      }
      const line = parseWireJson(batchOutputLineSchema, recorded, 'batch result');
      if (line.response?.status_code === 200) {
        output.push(line);
        completed++;
      } else {
        errors.push(line);
      }
    });
  }
  for (const line of [...byLine.keys()].sort((left, right) => left - right)) byLine.get(line)!();

  const write = async (kind: 'output' | 'error', lines: BatchOutputLine[]) => {
    if (lines.length === 0) return '';
    const content = Buffer.from(lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
    const file = await files.put(batch.tenant, { id: batchFileId(batch.id, kind), filename: `${batch.id}_${kind}.jsonl`, purpose: 'batch_output', content });
    return file.id;
  };
  const outputFileId = await write('output', output);
  const errorFileId = await write('error', errors);
  const status = stopReason ?? 'completed';
  await batches.advance(batch.tenant, batch.id, status, stopReason ? ['in_progress', 'cancelling', 'finalizing'] : ['finalizing'], {
    outputFileId,
    errorFileId,
    total: String(checked.total), // a batch cancelled while validating was never counted
    completed: String(completed),
    failed: String(checked.total - completed),
  }, true);
  await files.release(batch.tenant, batch.inputFileId, batch.id); // its input may be deleted now
  deps.log(`batch ${batch.id} ${status}: ${completed} completed, ${checked.total - completed} failed`);
}
