/**
 * Batches in a region's Redis: one HASH per batch and a per-tenant index, and while it runs a
 * HASH of its finished requests (input line → output line), all in the tenant's slot. Every
 * status change is one Lua script that acts only from the statuses it names, so a cancel and the
 * workers' own progress never overwrite each other; a request's result is recorded at most once
 * (HSETNX) and counted in the same script, so a worker that runs again after a crash can neither
 * lose nor double a result.
 */
import { BATCH_ENDPOINTS, BATCH_STATUSES, parseWire, WIRE_VERSION, type BatchCounts, type BatchLineError, type BatchRecord, type BatchStatus, type BatchUsage, type CreatedWindow } from '@bamba/shared';
import { z } from 'zod';
import type { RegionRedis } from './connection.js';
import { countField, jsonField } from './hash-fields.js';
import { isBatchId, newBatchId } from './ids.js';
import type { RegionKeys } from './keys.js';
import { indexPage, putIndexedRecord } from './indexed-records.js';
import { runScript, type LuaScript } from './scripts.js';

const optionalTime = z.string().transform((text, context) => {
  if (text === '') return null;
  if (!/^\d+$/.test(text)) {
    context.addIssue({ code: 'custom', message: 'not a time' });
    return z.NEVER;
  }
  return Number(text);
});

const batchHashSchema = z.object({
  v: z.literal(String(WIRE_VERSION)),
  tenant: z.string().min(1),
  endpoint: z.enum(BATCH_ENDPOINTS),
  inputFileId: z.string().min(1),
  status: z.enum(BATCH_STATUSES),
  createdAtMs: countField,
  expiresAtMs: countField,
  inProgressAtMs: optionalTime,
  finalizingAtMs: optionalTime,
  completedAtMs: optionalTime,
  failedAtMs: optionalTime,
  expiredAtMs: optionalTime,
  cancellingAtMs: optionalTime,
  cancelledAtMs: optionalTime,
  outputFileId: z.string().transform((id) => id || null),
  errorFileId: z.string().transform((id) => id || null),
  total: countField,
  completed: countField,
  failed: countField,
  errors: jsonField(z.array(z.object({ code: z.string(), message: z.string(), param: z.string().nullable(), line: z.number().int().nullable() })), 'errors is not the expected JSON'),
  metadata: jsonField(z.record(z.string(), z.string()), 'metadata is not the expected JSON'),
  // Absent from batches written before they were kept.
  model: z.string().default('').transform((model) => model || null),
  inputTokens: countField.default(0),
  cachedTokens: countField.default(0),
  outputTokens: countField.default(0),
});

type BatchHash = z.input<typeof batchHashSchema>;
/** The field that records when a batch reached each status. */
const STATUS_TIME_FIELD: Partial<Record<BatchStatus, keyof BatchHash>> = {
  in_progress: 'inProgressAtMs',
  finalizing: 'finalizingAtMs',
  completed: 'completedAtMs',
  failed: 'failedAtMs',
  expired: 'expiredAtMs',
  cancelling: 'cancellingAtMs',
  cancelled: 'cancelledAtMs',
};

/**
 * Move a batch to a status, only from the listed ones; optionally let its results hash expire
 * (after a day: a run of the batch that is late finalizes from the same results, writing the
 * same files). KEYS[1] batch hash, KEYS[2] its results hash. ARGV[1] new status, ARGV[2]
 * allowed statuses (space-separated), ARGV[3] '1' to let the results expire, ARGV[4..]
 * field/value pairs to set.
 * Returns the status it left, or false when it was in none of the allowed ones.
 */
const ADVANCE_BATCH: LuaScript = {
  name: 'bambaAdvanceBatch',
  keys: 2,
  lua: `
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local allowed = false
for status in string.gmatch(ARGV[2], '%S+') do
  if status == current then allowed = true end
end
if not allowed then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if #ARGV >= 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
if ARGV[3] == '1' then redis.call('EXPIRE', KEYS[2], 86400) end
return current
`,
};

/**
 * Record one request's result, once, while the batch runs, with its tokens. KEYS[1] batch hash,
 * KEYS[2] results hash. ARGV[1] input line, ARGV[2] output line (JSON), ARGV[3] 'completed' or
 * 'failed', ARGV[4..6] its input, cached and output tokens.
 * Returns 1 (recorded and counted) or 0 (recorded before, or the batch is finished).
 */
const RECORD_RESULT: LuaScript = {
  name: 'bambaRecordBatchResult',
  keys: 2,
  lua: `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'in_progress' and status ~= 'cancelling' then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], 'inputTokens', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'cachedTokens', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'outputTokens', ARGV[6])
return 1
`,
};

/** A workers process's report older than this is from a process that is gone. */
const WORKER_REPORT_MAX_AGE_MS = 10_000;

const inFlightReportSchema = z.object({ inFlight: z.number().int().min(0), atMs: z.number().int() });
function parseInFlight(text: string): z.infer<typeof inFlightReportSchema> | null {
  try {
    return inFlightReportSchema.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

export interface BatchFigures {
  byStatus: Record<BatchStatus, number>;
  requestsCompleted: number;
  requestsFailed: number;
  completionTokens: number;
  /** Batch requests queued or running now, over every workers process. */
  requestsInFlight: number;
}

export interface NewBatch {
  endpoint: BatchRecord['endpoint'];
  inputFileId: string;
  metadata: Record<string, string>;
  expiresAtMs: number;
}

export class BatchStore {
  constructor(private readonly redis: RegionRedis, private readonly keys: RegionKeys) {}

  private keysOf(tenant: string, batchId: string): string[] {
    return [this.keys.batch(tenant, batchId), this.keys.batchResults(tenant, batchId)];
  }

  /** Counted by status across the region: a figure, so a failed update never fails the batch. */
  private async countStatus(from: BatchStatus | null, to: BatchStatus): Promise<void> {
    const pipeline = this.redis.pipeline();
    if (from) pipeline.hincrby(this.keys.batchStatusCounts, from, -1);
    pipeline.hincrby(this.keys.batchStatusCounts, to, 1);
    await pipeline.exec().catch(() => {});
  }

  async create(tenant: string, batch: NewBatch): Promise<BatchRecord> {
    const id = newBatchId(this.keys.region);
    const createdAtMs = Date.now();
    const hash: Record<keyof BatchHash, string> = {
      v: String(WIRE_VERSION), tenant, endpoint: batch.endpoint, inputFileId: batch.inputFileId, status: 'validating',
      createdAtMs: String(createdAtMs), expiresAtMs: String(batch.expiresAtMs),
      inProgressAtMs: '', finalizingAtMs: '', completedAtMs: '', failedAtMs: '', expiredAtMs: '', cancellingAtMs: '', cancelledAtMs: '',
      outputFileId: '', errorFileId: '', total: '0', completed: '0', failed: '0', errors: '[]', metadata: JSON.stringify(batch.metadata),
      model: '', inputTokens: '0', cachedTokens: '0', outputTokens: '0',
    };
    await putIndexedRecord(this.redis, this.keys.batch(tenant, id), this.keys.tenantBatches(tenant), id, createdAtMs, hash);
    await this.countStatus(null, 'validating');
    return (await this.get(tenant, id))!;
  }

  /** The tenant's batch, or null (another tenant's batch reads as missing). */
  async get(tenant: string, batchId: string): Promise<BatchRecord | null> {
    if (!isBatchId(batchId)) return null;
    const hash = await this.redis.hgetall(this.keys.batch(tenant, batchId));
    if (Object.keys(hash).length === 0 || hash.tenant !== tenant) return null;
    const fields = parseWire(batchHashSchema, hash, 'batch record');
    const counts: BatchCounts = { total: fields.total, completed: fields.completed, failed: fields.failed };
    const usage: BatchUsage = { inputTokens: fields.inputTokens, cachedTokens: fields.cachedTokens, outputTokens: fields.outputTokens };
    const { v: _version, total: _total, completed: _completed, failed: _failed, inputTokens: _input, cachedTokens: _cached, outputTokens: _output, ...rest } = fields;
    return { ...rest, id: batchId, counts, usage };
  }

  /** A page of the tenant's batches, newest first, after the batch `after` or inside a creation-time window. */
  async list(tenant: string, query: { after: string | null; limit: number; window?: CreatedWindow }): Promise<{ batches: BatchRecord[]; hasMore: boolean }> {
    const ids = await indexPage(this.redis, this.keys.tenantBatches(tenant), { after: query.after, order: 'desc', ...(query.window ? { window: query.window } : {}) }, 0, query.limit + 1);
    if (ids === null) return { batches: [], hasMore: false };
    const batches = (await Promise.all(ids.slice(0, query.limit).map((id) => this.get(tenant, id)))).filter((batch): batch is BatchRecord => batch !== null);
    return { batches, hasMore: ids.length > query.limit };
  }

  /**
   * Move the batch to `to` when it is in one of `from`, with the time of the change and `fields`;
   * `dropResults` lets its results hash expire. False when it was not in `from`.
   */
  async advance(tenant: string, batchId: string, to: BatchStatus, from: readonly BatchStatus[], fields: Partial<Record<keyof BatchHash, string>> = {}, dropResults = false): Promise<boolean> {
    const timeField = STATUS_TIME_FIELD[to];
    const set: Record<string, string> = { ...fields, ...(timeField ? { [timeField]: String(Date.now()) } : {}) };
    const left = (await runScript(this.redis, ADVANCE_BATCH, this.keysOf(tenant, batchId), [to, from.join(' '), dropResults ? '1' : '0', ...Object.entries(set).flat()])) as string | null;
    if (!left) return false;
    await this.countStatus(left as BatchStatus, to);
    return true;
  }

  /** Validation done: the batch runs its valid requests; invalid lines are counted as failed. */
  markInProgress(tenant: string, batchId: string, total: number, invalid: number, errors: BatchLineError[], model: string | null): Promise<boolean> {
    return this.advance(tenant, batchId, 'in_progress', ['validating'], { total: String(total), failed: String(invalid), errors: JSON.stringify(errors), model: model ?? '' });
  }

  /** Record one request's output line (JSON) and its tokens once; false when it was recorded before. */
  async recordResult(tenant: string, batchId: string, line: number, outputLine: string, outcome: 'completed' | 'failed', usage: BatchUsage): Promise<boolean> {
    return (await runScript(this.redis, RECORD_RESULT, this.keysOf(tenant, batchId), [line, outputLine, outcome, usage.inputTokens, usage.cachedTokens, usage.outputTokens])) === 1;
  }

  /** The input lines that have a recorded result. */
  async resultLines(tenant: string, batchId: string): Promise<Set<number>> {
    return new Set((await this.redis.hkeys(this.keys.batchResults(tenant, batchId))).map(Number));
  }

  /** Every recorded result: input line → output line (JSON). */
  async results(tenant: string, batchId: string): Promise<Map<number, string>> {
    const hash = await this.redis.hgetall(this.keys.batchResults(tenant, batchId));
    return new Map(Object.entries(hash).map(([line, json]) => [Number(line), json]));
  }

  /** A batch request finished (counted once, by the process that recorded it). A figure: never fails. */
  async countRequest(outcome: 'completed' | 'failed', completionTokens: number): Promise<void> {
    const pipeline = this.redis.pipeline();
    pipeline.hincrby(this.keys.batchRequestCounts, outcome, 1);
    if (completionTokens > 0) pipeline.hincrby(this.keys.batchRequestCounts, 'completion_tokens', completionTokens);
    await pipeline.exec().catch(() => {});
  }

  /** A workers process's batch requests in flight now (refreshed every few seconds). */
  async reportInFlight(processId: string, inFlight: number): Promise<void> {
    await this.redis.hset(this.keys.batchWorkers, processId, JSON.stringify({ inFlight, atMs: Date.now() })).catch(() => {});
  }

  /** A workers process that stopped takes its figure with it. */
  async forgetProcess(processId: string): Promise<void> {
    await this.redis.hdel(this.keys.batchWorkers, processId).catch(() => {});
  }

  /** Region-wide batch figures for /metrics and the status page. */
  async figures(): Promise<BatchFigures> {
    const [byStatus, requests, workers] = await Promise.all([
      this.redis.hgetall(this.keys.batchStatusCounts),
      this.redis.hgetall(this.keys.batchRequestCounts),
      this.redis.hgetall(this.keys.batchWorkers),
    ]);
    let inFlight = 0;
    for (const [processId, text] of Object.entries(workers)) {
      const report = parseInFlight(text);
      if (report && Date.now() - report.atMs <= WORKER_REPORT_MAX_AGE_MS) inFlight += report.inFlight;
      else await this.redis.hdel(this.keys.batchWorkers, processId); // a process that died
    }
    return {
      byStatus: Object.fromEntries(BATCH_STATUSES.map((status) => [status, Math.max(0, Number(byStatus[status] ?? 0))])) as Record<BatchStatus, number>,
      requestsCompleted: Number(requests.completed ?? 0),
      requestsFailed: Number(requests.failed ?? 0),
      completionTokens: Number(requests.completion_tokens ?? 0),
      requestsInFlight: inFlight,
    };
  }
}
