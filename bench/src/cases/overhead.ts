/**
 * System overhead: time to first token and tokens/s through gateway → queue → gpu-node →
 * Redis Stream → SSE, against the engine called in-process on the same model, prompt and
 * settings, at concurrency 1 and 8, for the tiny and small presets. The gateway runs as its own
 * process, as in a deployment.
 */
import { resolve } from 'node:path';
import { GREEDY } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, type ModelPresetName } from '@bamba/model-gen';
import { startDirectEngine } from '@bamba/tests/support/direct-engine';
import { startTestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { timedStream } from '../timed-stream.js';
import { median, progress, round } from '../measure.js';

const MAX_TOKENS = 64;
const SLOTS = '8';
const prompt = (index: number) => [{ role: 'user' as const, content: `Benchmark prompt ${index}: tell me something.` }];

interface RoundResult { ttftMs: number[]; tokens: number; wallMs: number }

async function servedRound(url: string, modelId: string, concurrency: number, offset: number): Promise<RoundResult> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: concurrency }, async (_, index) => {
    const { ttftMs: ttft, body: buffer } = await timedStream(url, '/v1/chat/completions', { model: modelId, messages: prompt(offset + index), max_tokens: MAX_TOKENS, temperature: 0, stream_options: { include_usage: true } }, '"content"');
    const usage = /"completion_tokens":(\d+)/.exec(buffer);
    return { ttft, tokens: usage ? Number(usage[1]) : 0 };
  }));
  return { ttftMs: results.map((result) => result.ttft), tokens: results.reduce((sum, result) => sum + result.tokens, 0), wallMs: performance.now() - started };
}

const ROUNDS: Record<'tiny' | 'small', { quick: Record<1 | 8, number>; full: Record<1 | 8, number> }> = {
  tiny: { quick: { 1: 3, 8: 1 }, full: { 1: 15, 8: 4 } },
  small: { quick: { 1: 2, 8: 1 }, full: { 1: 7, 8: 3 } },
};

export const overheadCase: BenchCase = {
  name: 'overhead',
  description: 'served (HTTP → queue → gpu-node → SSE) vs engine in-process, tiny and small, concurrency 1 and 8',
  async run({ quick }) {
    const rows: Array<Array<string | number>> = [];
    const raw: Record<string, unknown> = {};
    for (const preset of ['tiny', 'small'] as const satisfies readonly ModelPresetName[]) {
      const modelPath = ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED);
      const modelId = `bamba-${preset}`;
      progress(`${preset}: starting a stack (redis, one gpu-node with 8 slots, a gateway process) and an in-process engine`);
      const stack = await startTestStack({ model: { path: modelPath, id: modelId }, gatewayProcess: true, nodeEnv: { BAMBA_SLOTS: SLOTS, BAMBA_CONTEXT_SIZE: '1024', BAMBA_THREADS: '1' } });
      const engine = await startDirectEngine({ slots: Number(SLOTS), modelPath });
      try {
        for (const concurrency of [1, 8] as const) {
          const rounds = ROUNDS[preset][quick ? 'quick' : 'full'][concurrency];
          const direct: RoundResult[] = [];
          const served: RoundResult[] = [];
          for (let round_ = 0; round_ < rounds; round_++) {
            progress(`${preset}, concurrency ${concurrency}, round ${round_ + 1}/${rounds}`);
            // Alternate direct and served so drift on a noisy machine hits both alike.
            const started = performance.now();
            const directResults = await Promise.all(Array.from({ length: concurrency }, async (_, index) => {
              const slot = engine.acquireSlot()!;
              const stream = engine.generate(slot, engine.tokenizeChat(prompt(round_ * 8 + index)), { ...GREEDY, maxTokens: MAX_TOKENS });
              let tokens = 0;
              for await (const piece of stream) if (piece.token !== null) tokens++;
              const summary = await stream.summary;
              await engine.releaseSlot(slot);
              return { ttft: summary.timeToFirstTokenMs, tokens };
            }));
            direct.push({ ttftMs: directResults.map((result) => result.ttft), tokens: directResults.reduce((sum, result) => sum + result.tokens, 0), wallMs: performance.now() - started });
            served.push(await servedRound(stack.url, modelId, concurrency, round_ * 8));
          }
          const summarize = (results: RoundResult[]) => ({
            ttftMs: median(results.flatMap((result) => result.ttftMs)),
            tokensPerSecond: median(results.map((result) => (result.tokens / result.wallMs) * 1000)),
          });
          const directSummary = summarize(direct);
          const servedSummary = summarize(served);
          raw[`${preset}-concurrency${concurrency}`] = { direct: directSummary, served: servedSummary, rounds };
          rows.push([
            preset, concurrency,
            round(directSummary.ttftMs, 1), round(servedSummary.ttftMs, 1), round(servedSummary.ttftMs - directSummary.ttftMs, 1),
            round(directSummary.tokensPerSecond, 0), round(servedSummary.tokensPerSecond, 0), round(servedSummary.tokensPerSecond / directSummary.tokensPerSecond, 2),
          ]);
        }
      } finally {
        await engine.close();
        await stack.stop();
      }
    }
    return {
      raw,
      tables: [{
        title: 'System overhead (tiny and small)',
        note: `Chat requests of ${MAX_TOKENS} greedy tokens. Direct: the engine in-process (TTFT from the engine's own call). Served: HTTP streaming through a gateway process → BullMQ → gpu-node (separate process, 8 slots, 1 thread) → Redis Stream → SSE; TTFT from sending the request to the first content chunk. Medians; tokens/s is aggregate over the concurrent requests, from sending to the stream's end. All processes share the machine's cores.`,
        columns: ['preset', 'concurrency', 'TTFT direct (ms)', 'TTFT served (ms)', 'added TTFT (ms)', 'tokens/s direct', 'tokens/s served', 'tokens/s ratio served/direct'],
        rows,
      }],
    };
  },
};
