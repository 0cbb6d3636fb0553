/**
 * Resume vs replay: time to first token of the next turn after H tokens of history on the
 * `small` preset, through the HTTP API, with the state resident in a slot, in the node's host-
 * memory tier, loaded from a Redis snapshot, or rebuilt by replaying the transcript; plus
 * snapshot export/import alone. `measureResume` is the same measurement for any model and
 * device (bench/src/gpu/stack.ts runs it on CUDA with bamba-9b-shape).
 * The character-level vocabulary makes H characters of system prompt H tokens of history.
 */
import { resolve } from 'node:path';
import { createLlamaEngine, type EngineDevice } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { startTestStack, type TestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';
import { timedStream } from '../timed-stream.js';

const TURN_TOKENS = 16;

/** What to measure on: the model, the device, the histories and how the gpu-node is set. */
export interface ResumeRun {
  modelPath: string;
  modelId: string;
  device: EngineDevice;
  /** Tokens per slot (history plus two turns must fit). */
  context: number;
  histories: number[];
  repetitionsFor(history: number): number;
  gatewayEnv?: Record<string, string>;
  /** CPU threads of the gpu-nodes and the in-process engine (default: theirs). */
  threads?: number;
  /** Where the in-process engine writes state files (the gpu-nodes read BAMBA_STATE_DIR). */
  stateDir?: string;
  /** Skip the host-tier stack (default: measured). */
  skipHost?: boolean;
  /** Skip the in-process export/import timing (default: measured). */
  skipTransfer?: boolean;
}

export interface ResumeFigures {
  results: Record<number, { resident: number[]; host: number[]; snapshot: number[]; replay: number[] }>;
  transfer: Record<number, { exportMs: number; importMs: number; bytes: number }>;
}

/** Send a streaming turn; milliseconds until the first content chunk, and the resume path. */
async function timedTurn(stack: TestStack, modelId: string, sessionId: string, content: string): Promise<{ ttftMs: number; resume: string; cached: number }> {
  const turn = await timedStream(stack.url, '/v1/chat/completions', { model: modelId, session_id: sessionId, messages: [{ role: 'user', content }], max_tokens: TURN_TOKENS, temperature: 0, stream_options: { include_usage: true } }, '"content"');
  return { ttftMs: turn.ttftMs, resume: turn.resume, cached: Number(/"cached_tokens":(\d+)/.exec(turn.body)?.[1] ?? -1) };
}

/**
 * A turn's state is saved after its end event; a next turn sent at once waits for that save. To
 * time the resume itself, the next turn goes once the session points at its new state (as when
 * a person reads the answer before replying).
 */
async function stateLanded(stack: TestStack, sessionId: string, turns: number): Promise<void> {
  await stack.waitFor('the turn\'s state to land', async () => {
    const session = (await (await fetch(`${stack.url}/v1/sessions/${sessionId}`)).json()) as { turns: number; snapshot_bytes: number; token_count: number };
    return session.turns === turns && session.snapshot_bytes > 0 ? true : undefined;
  }, 120_000);
}

async function createSession(stack: TestStack, modelId: string, historyTokens: number): Promise<string> {
  const system = 'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(historyTokens / 45)).slice(0, historyTokens);
  const response = await fetch(`${stack.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: modelId, system }) });
  return ((await response.json()) as { id: string }).id;
}

export async function measureResume(run: ResumeRun): Promise<ResumeFigures> {
  const { modelPath, modelId, histories, repetitionsFor } = run;
  const model = { path: modelPath, id: modelId };
  const nodeEnv = { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: String(run.context), BAMBA_DEVICE: run.device, ...(run.threads ? { BAMBA_THREADS: String(run.threads) } : {}) };
  const gatewayEnv = run.gatewayEnv ?? {};
  const results: ResumeFigures['results'] = {};
  for (const history of histories) results[history] = { resident: [], host: [], snapshot: [], replay: [] };
  const turn = (stack: TestStack, sessionId: string, content: string) => timedTurn(stack, modelId, sessionId, content);

  /** Second turns on a stack where every resume should take `path`: their times to first token. */
  const secondTurns = async (path: 'resident' | 'host', nodeOverrides: Record<string, string>) => {
    const stack = await startTestStack({ model, nodeEnv: { ...nodeEnv, ...nodeOverrides }, gatewayEnv });
    try {
      for (const history of histories) {
        for (let repetition = 0; repetition < repetitionsFor(history); repetition++) {
          progress(`${path}, H=${history}, ${repetition + 1}/${repetitionsFor(history)}`);
          const sessionId = await createSession(stack, modelId, history);
          await turn(stack, sessionId, 'first turn');
          await stateLanded(stack, sessionId, 1);
          const second = await turn(stack, sessionId, 'second turn');
          if (second.resume !== path) throw new Error(`expected a ${path} resume, got ${second.resume}`);
          results[history]![path].push(second.ttftMs);
        }
      }
    } finally {
      await stack.stop();
    }
  };
  progress(`stack with resident sessions (${modelId})`);
  await secondTurns('resident', {});
  if (!run.skipHost) {
    progress('stack without resident slots: every resume comes from the host-memory tier');
    await secondTurns('host', { BAMBA_RESIDENT_SESSIONS: '0' });
  }

  // No system-prompt checkpoints either: the replayed session's history starts with the same system prompt.
  progress('stack without resident slots or host tier: every resume loads the Redis snapshot');
  const snapshotStack = await startTestStack({ model, nodeEnv: { ...nodeEnv, BAMBA_RESIDENT_SESSIONS: '0', BAMBA_HOST_TIER_BYTES: '0', BAMBA_SYSTEM_CHECKPOINT_TOKENS: '0' }, gatewayEnv });
  try {
    for (const history of histories) {
      for (let repetition = 0; repetition < repetitionsFor(history); repetition++) {
        progress(`snapshot and replay, H=${history}, ${repetition + 1}/${repetitionsFor(history)}`);
        const resumed = await createSession(snapshotStack, modelId, history);
        const replayed = await createSession(snapshotStack, modelId, history);
        await turn(snapshotStack, resumed, 'first turn');
        await turn(snapshotStack, replayed, 'first turn');
        await stateLanded(snapshotStack, resumed, 1);
        // A turn's snapshot lands after its end: wait for it, then delete it to force the replay.
        const snapshotId = await snapshotStack.waitFor('the first turn\'s snapshot', async () => (await snapshotStack.redis.hget(snapshotStack.keys.session(replayed), 'snapshotId')) || undefined, 120_000);
        await snapshotStack.redis.del(snapshotStack.keys.snapshotMeta(snapshotId)); // force the transcript replay
        const fromSnapshot = await turn(snapshotStack, resumed, 'second turn');
        const fromReplay = await turn(snapshotStack, replayed, 'second turn');
        if (fromSnapshot.resume !== 'snapshot' || fromReplay.resume !== 'replay') throw new Error(`unexpected resume paths ${fromSnapshot.resume}/${fromReplay.resume}`);
        results[history]!.snapshot.push(fromSnapshot.ttftMs);
        results[history]!.replay.push(fromReplay.ttftMs);
      }
    }
  } finally {
    await snapshotStack.stop();
  }

  const transfer: ResumeFigures['transfer'] = {};
  if (run.skipTransfer) return { results, transfer };
  progress('snapshot export/import alone, in-process');
  const engine = await createLlamaEngine({ modelPath, device: run.device, slots: 2, contextSize: run.context, ...(run.threads ? { threads: run.threads } : {}), ...(run.stateDir ? { stateDir: run.stateDir } : {}) });
  try {
    for (const history of histories) {
      const slot = engine.acquireSlot()!;
      const target = engine.acquireSlot()!;
      await engine.evaluate(slot, engine.tokenize('x'.repeat(history)));
      const exports: number[] = [];
      const imports: number[] = [];
      let bytes = 0;
      for (let repetition = 0; repetition < 5; repetition++) {
        let started = performance.now();
        const snapshot = await engine.exportState(slot);
        exports.push(performance.now() - started);
        bytes = snapshot.length;
        started = performance.now();
        await engine.importState(target, snapshot);
        imports.push(performance.now() - started);
      }
      transfer[history] = { exportMs: median(exports), importMs: median(imports), bytes };
      await engine.releaseSlot(slot);
      await engine.releaseSlot(target);
    }
  } finally {
    await engine.close();
  }
  return { results, transfer };
}

export const RESUME_COLUMNS = ['H (tokens)', 'TTFT resident (ms)', 'TTFT host (ms)', 'TTFT snapshot (ms)', 'TTFT replay (ms)', 'host/resident', 'snapshot/resident', 'replay/snapshot', 'replay/resident', 'snapshot MB', 'export (ms)', 'import (ms)'];

export function resumeRows(histories: readonly number[], { results, transfer }: ResumeFigures): Array<Array<string | number>> {
  return histories.map((history) => {
    const { resident, host, snapshot, replay } = results[history]!;
    const [residentMs, hostMs, snapshotMs, replayMs] = [median(resident), median(host), median(snapshot), median(replay)];
    // A path a run skipped shows as a dash, not NaN.
    const shown = (value: number, digits: number) => (Number.isFinite(value) ? round(value, digits) : '—');
    const moved = transfer[history];
    return [history, shown(residentMs, 1), shown(hostMs, 1), shown(snapshotMs, 1), shown(replayMs, 1), shown(hostMs / residentMs, 2), shown(snapshotMs / residentMs, 2), shown(replayMs / snapshotMs, 2), shown(replayMs / residentMs, 2),
      moved ? round(moved.bytes / 1e6, 2) : '—', moved ? round(moved.exportMs, 1) : '—', moved ? round(moved.importMs, 1) : '—'];
  });
}

export const resumeCase: BenchCase = {
  name: 'resume',
  description: 'TTFT of the next turn after H tokens of history on small: resident, Redis snapshot, replay',
  async run({ quick }) {
    const histories = quick ? [256, 1024] : [256, 1024, 4096, 8192];
    // Replaying 8K tokens on this CPU takes ~20 s, so the longest history is measured once.
    const repetitionsFor = (history: number) => (quick || history > 4096 ? 1 : 3);
    const figures = await measureResume({
      modelPath: ensureCachedModel(resolve('.cache'), 'small', DEFAULT_MODEL_SEED),
      modelId: 'bamba-small',
      device: 'cpu',
      context: 10_000,
      histories,
      repetitionsFor,
      threads: 1,
    });
    return {
      raw: { ...figures, repetitions: Object.fromEntries(histories.map((history) => [history, repetitionsFor(history)])) },
      tables: [{
        title: 'Resume vs replay (small preset, through the HTTP API)',
        note: `Time to first token of a session's next turn after H tokens of history (plus the first turn), sent once the first turn's state has landed (it is saved after the end event), streaming, median of 3 (1 at 8K). Resident: the state stayed in the node's slot. Host: the node keeps no resident slots, so the state comes from its host-memory tier. Snapshot: no resident slots and no host tier: the turn's state is loaded from Redis. Replay: the snapshot was deleted, so the transcript is re-evaluated. Export/import: the engine alone, in-process, median of 5. Goal: host and snapshot ≤ 1.3× resident at 8K.`,
        columns: RESUME_COLUMNS,
        rows: resumeRows(histories, figures),
      }],
    };
  },
};
