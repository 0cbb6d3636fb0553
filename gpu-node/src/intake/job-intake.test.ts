/**
 * The intake against a real redis-server and real BullMQ queues, with a scripted `run` (the
 * engine is not the point here): malformed jobs fail for good without running, a run whose lock
 * is lost stops, and stopping drains then hands the rest back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalRedis, type LocalRedis } from '@bamba/cli/local-redis';
import { connectRedis, regionKeys, type RegionKeys, type RegionRedis } from '@bamba/region';
import { WIRE_VERSION, type GenerationJob } from '@bamba/shared';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SlotScheduler } from '../scheduler/slot-scheduler.js';
import { interruptionOf } from './interruption.js';
import { JobIntake, type IntakeOutcome, type JobContext, type JobIntakeOptions } from './job-intake.js';

let server: LocalRedis;
let dataDir: string;
let redis: RegionRedis;
let keys: RegionKeys;
let queue: Queue;
const intakes: JobIntake[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bamba-intake-'));
  server = await startLocalRedis({ dataDir, appendOnly: false });
  redis = connectRedis({ kind: 'single', url: server.url }, { role: 'intake-test', mode: 'queue' });
});
afterEach(async () => {
  await Promise.all(intakes.splice(0).map((intake) => intake.stop(0)));
  await queue?.close();
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function setUp(name: string, run: (context: JobContext) => Promise<IntakeOutcome>, overrides: Partial<JobIntakeOptions> = {}) {
  keys = regionKeys(`intake-${name}`, 'local');
  queue = new Queue(keys.generationQueue, { connection: redis, prefix: keys.bullPrefix });
  const refused: Array<{ data: unknown; reason: Error }> = [];
  const intake = new JobIntake({
    connection: redis, keys, scheduler: new SlotScheduler(2), ownQueue: keys.nodeQueue('n1'),
    lockDurationMs: 30_000, stalledIntervalMs: 30_000, log: () => {},
    whyCancelled: async () => null,
    onRefused: async (data, reason) => { refused.push({ data, reason }); },
    run, ...overrides,
  });
  intakes.push(intake);
  intake.start();
  return { intake, refused };
}

const job = (requestId: string): GenerationJob => ({
  v: WIRE_VERSION, requestId, tenant: 't', model: 'm', input: { kind: 'completion', prompt: 'hi' },
  params: { maxTokens: 4, temperature: 0, topP: 1, topK: 0, seed: 1, stop: [] },
  priority: 'interactive', relayGroup: 'g', deadlineAtMs: Date.now() + 60_000, enqueuedAtMs: Date.now(),
});

async function until<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let attempt = 0; attempt < 400; attempt++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('JobIntake', () => {
  it('fails a job with an unknown wire version for good, without running it, and tells its client', async () => {
    let runs = 0;
    const { refused } = setUp('malformed', async () => { runs++; return { kind: 'finished', completionTokens: 0 }; });
    await queue.add('generate', { ...job('req-future'), v: 2 }, { jobId: 'req-future', attempts: 3 });
    const failed = await until(async () => ((await queue.getJob('req-future'))?.failedReason ? await queue.getJob('req-future') : undefined), 'the job to fail');
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(1); // not retried
    expect(runs).toBe(0);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toMatchObject({ code: 'wire_version_unsupported' });
  });

  it('stops a run whose lock renewal fails (another node may have the job) and leaves the job alone', async () => {
    let interrupted: string | null = null;
    setUp('lock-lost', async ({ signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      interrupted = interruptionOf(signal);
      return { kind: 'abandoned' };
    }, { lockDurationMs: 300 });
    await queue.add('generate', job('req-lock'), { jobId: 'req-lock', attempts: 3 });
    await until(async () => ((await redis.exists(`${queue.toKey('req-lock')}:lock`)) === 1 ? true : undefined), 'the job to be locked');
    await redis.del(`${queue.toKey('req-lock')}:lock`); // as if it expired and another node took it
    await until(async () => interrupted ?? undefined, 'the run to stop');
    expect(interrupted).toBe('lock-lost');
    expect(await (await queue.getJob('req-lock'))!.getState()).toBe('active'); // not completed or failed by this node
  });

  it('on stop lets a short run finish and hands a long one back to the queue', async () => {
    const outcomes = new Map<string, string>();
    const { intake } = setUp('drain', async ({ job: data, signal }) => {
      const workMs = data.requestId === 'req-short' ? 100 : 60_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, workMs);
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      const reason = interruptionOf(signal);
      outcomes.set(data.requestId, reason ?? 'finished');
      return reason === 'node-stopping' ? { kind: 'handed-back' } : { kind: 'finished', completionTokens: 1 };
    });
    await queue.add('generate', job('req-short'), { jobId: 'req-short', attempts: 3 });
    await queue.add('generate', job('req-long'), { jobId: 'req-long', attempts: 3 });
    await until(async () => (intake.runningCount === 2 ? true : undefined), 'both jobs running');
    intakes.splice(intakes.indexOf(intake), 1);
    await intake.stop(1000);
    expect(outcomes.get('req-short')).toBe('finished');
    expect(outcomes.get('req-long')).toBe('node-stopping');
    expect(await (await queue.getJob('req-short'))!.getState()).toBe('completed');
    const handedBack = (await queue.getJob('req-long'))!;
    expect(['wait', 'waiting', 'prioritized']).toContain(await handedBack.getState()); // ready for another node
    expect(handedBack.attemptsMade).toBe(1);
  });
});
