/**
 * What work over the whole vocabulary costs per generated token: log probabilities (each
 * token's distribution crosses from llama.cpp into JS, and the most likely are picked out) and a
 * grammar (llama.cpp checks candidate tokens against it), on the tiny model with its 100-token
 * vocabulary and with Bamba-9B's 128,256 rows (tiny-wide-vocab: the same model padded with
 * unused tokens). The engine in-process, alternating free, logprobs and held generations so
 * drift on a noisy machine hits all alike.
 */
import { resolve } from 'node:path';
import { GREEDY, type Engine, type GenerationParams } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, MODEL_PRESETS } from '@bamba/model-gen';
import type { OutputFormat } from '@bamba/shared';
import { startDirectEngine } from '@bamba/tests/support/direct-engine';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';
import { generate, listSchema } from './structured-output.js';

const TOKENS = 96;
const TOP_LOGPROBS = 5;

/** Decode tokens/s of one greedy answer to the structured-output case's prompt. */
const decodeRate = async (engine: Engine, params: GenerationParams) => (await generate(engine, params)).decodeTokensPerSecond;

export const vocabularyWorkCase: BenchCase = {
  name: 'vocabulary-work',
  description: `decode tokens/s free, with logprobs (top ${TOP_LOGPROBS}) and held by a grammar, on a 100-token and a 128,256-token vocabulary (engine in-process)`,
  async run({ quick }) {
    const rounds = quick ? 2 : 9;
    const rows: Array<Array<string | number>> = [];
    const raw: Record<string, unknown> = {};
    const format: OutputFormat = { type: 'json_schema', schema: listSchema(null) };
    for (const preset of ['tiny', 'tiny-wide-vocab'] as const) {
      progress(`${preset}: loading the engine (generating the model the first time)`);
      const engine = await startDirectEngine({ slots: 1, contextSize: 1024, modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED) });
      try {
        const runs = { free: [] as number[], chosen: [] as number[], logprobs: [] as number[], held: [] as number[] };
        await decodeRate(engine, { ...GREEDY, maxTokens: 4, format }); // builds the kept grammar once
        for (let index = 0; index < rounds; index++) {
          progress(`${preset}: round ${index + 1}/${rounds}`);
          runs.free.push(await decodeRate(engine, { ...GREEDY, maxTokens: TOKENS }));
          runs.chosen.push(await decodeRate(engine, { ...GREEDY, maxTokens: TOKENS, logprobs: 0 }));
          runs.logprobs.push(await decodeRate(engine, { ...GREEDY, maxTokens: TOKENS, logprobs: TOP_LOGPROBS }));
          runs.held.push(await decodeRate(engine, { ...GREEDY, maxTokens: 4 * TOKENS, format }));
        }
        const free = median(runs.free);
        const chosen = median(runs.chosen);
        const logprobs = median(runs.logprobs);
        const held = median(runs.held);
        raw[preset] = { rounds, free, chosen, logprobs, held, runs };
        rows.push([
          preset, engine.info.vocabSize,
          round(free, 0), round(chosen / free, 2), round(logprobs, 0), round(logprobs / free, 2), round(held, 0), round(held / free, 2),
        ]);
      } finally {
        await engine.close();
      }
    }
    const padded = MODEL_PRESETS['tiny-wide-vocab'].paddedVocabSize;
    return {
      raw,
      tables: [{
        title: 'Per-token work over the vocabulary: logprobs and grammars',
        note: `Greedy answers to one chat prompt, the engine in-process (1 slot, 1 thread): free (${TOKENS} tokens), with \`logprobs\` and no alternatives (the chosen token's only), with ${TOP_LOGPROBS} alternatives, and held to the structured-output case's schema (twelve short strings, about as many tokens; kept grammar). Decode tokens/s excludes the first token; medians of ${rounds} alternating rounds. tiny-wide-vocab is tiny with its vocabulary padded to ${padded.toLocaleString('en-US')} rows (Bamba-9B's): the output layer grows with it, so its free rate is lower too; the ratios show what the per-token work over the vocabulary adds. Padding tokens are unused tokens whose output rows are zero (greedy never writes one, as a trained model would not); a real 128K vocabulary has multi-character tokens, which a grammar checks at more cost.`,
        columns: ['preset', 'vocabulary', 'decode tokens/s free', `ratio logprobs (0 alternatives)/free`, `with logprobs (${TOP_LOGPROBS} alternatives)`, 'ratio/free', 'held by a grammar', 'ratio held/free'],
        rows,
      }],
    };
  },
};
