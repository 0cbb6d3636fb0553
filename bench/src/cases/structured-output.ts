/**
 * What structured outputs cost: decode tokens/s of answers held to a JSON Schema against free
 * answers of the same prompt, and time to first token with a grammar built for the request, with
 * a kept one, and with none. The engine in-process (no HTTP noise), tiny and small, alternating
 * held and free generations so drift on a noisy machine hits both alike.
 */
import { resolve } from 'node:path';
import { GREEDY, type Engine, type GenerationParams } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import type { OutputFormat } from '@bamba/shared';
import { startDirectEngine } from '@bamba/tests/support/direct-engine';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';

const FREE_TOKENS = 128;
const prompt = [{ role: 'user' as const, content: 'List twelve short words as JSON.' }];

/** Twelve strings of up to 8 characters: an answer of about as many tokens as the free one. */
export const listSchema = (extraProperty: string | null) => ({
  type: 'object',
  properties: {
    ...(extraProperty ? { [extraProperty]: { type: 'null' } } : {}),
    words: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 12, maxItems: 12 },
  },
  additionalProperties: false,
});

interface Generation { ttftMs: number; decodeTokensPerSecond: number; tokens: number }

/** One generation of the list prompt on a fresh slot: its TTFT, decode tokens/s (first token left out) and length. */
export async function generate(engine: Engine, params: GenerationParams): Promise<Generation> {
  const slot = engine.acquireSlot()!;
  try {
    const stream = engine.generate(slot, engine.tokenizeChat(prompt), params);
    for await (const _piece of stream) { /* drained for the summary */ }
    const summary = await stream.summary;
    const decodeMs = summary.totalMs - summary.timeToFirstTokenMs;
    return { ttftMs: summary.timeToFirstTokenMs, tokens: summary.completionTokens, decodeTokensPerSecond: ((summary.completionTokens - 1) / decodeMs) * 1000 };
  } finally {
    await engine.releaseSlot(slot);
  }
}

export const structuredOutputCase: BenchCase = {
  name: 'structured-output',
  description: 'answers held to a JSON Schema vs free answers: decode tokens/s, and TTFT with a new, a kept and no grammar (engine in-process, tiny and small)',
  async run({ quick }) {
    const rounds = quick ? 2 : 9;
    const rows: Array<Array<string | number>> = [];
    const raw: Record<string, unknown> = {};
    for (const preset of ['tiny', 'small'] as const) {
      progress(`${preset}: loading the engine`);
      const engine = await startDirectEngine({ slots: 1, contextSize: 1024, modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED) });
      try {
        const free: Generation[] = [];
        const kept: Generation[] = [];
        const built: Generation[] = [];
        const keptFormat: OutputFormat = { type: 'json_schema', schema: listSchema(null) };
        await generate(engine, { ...GREEDY, maxTokens: 4, format: keptFormat }); // builds the kept grammar once
        for (let index = 0; index < rounds; index++) {
          progress(`${preset}: round ${index + 1}/${rounds}`);
          free.push(await generate(engine, { ...GREEDY, maxTokens: FREE_TOKENS }));
          kept.push(await generate(engine, { ...GREEDY, maxTokens: 4 * FREE_TOKENS, format: keptFormat }));
          // A schema this engine has not seen: its grammar is built for this request.
          built.push(await generate(engine, { ...GREEDY, maxTokens: 4, format: { type: 'json_schema', schema: listSchema(`round_${preset}_${index}_${Date.now()}`) } }));
        }
        const med = (results: Generation[], pick: (result: Generation) => number) => median(results.map(pick));
        const summary = {
          freeTokensPerSecond: med(free, (result) => result.decodeTokensPerSecond),
          heldTokensPerSecond: med(kept, (result) => result.decodeTokensPerSecond),
          heldTokens: med(kept, (result) => result.tokens),
          ttftFreeMs: med(free, (result) => result.ttftMs),
          ttftKeptMs: med(kept, (result) => result.ttftMs),
          ttftBuiltMs: med(built, (result) => result.ttftMs),
        };
        raw[preset] = { ...summary, rounds, free, kept, built };
        rows.push([
          preset,
          round(summary.freeTokensPerSecond, 0), round(summary.heldTokensPerSecond, 0), round(summary.heldTokensPerSecond / summary.freeTokensPerSecond, 2),
          round(summary.ttftFreeMs, 1), round(summary.ttftKeptMs, 1), round(summary.ttftBuiltMs, 1),
        ]);
      } finally {
        await engine.close();
      }
    }
    return {
      raw,
      tables: [{
        title: 'Structured outputs: what a grammar costs',
        note: `Greedy answers to one chat prompt, the engine in-process (1 slot, 1 thread). Free: ${FREE_TOKENS} tokens of plain text. Held: the answer held to a schema of twelve strings of up to 8 characters (about as many tokens; it ends itself). Decode tokens/s excludes the first token; TTFT with a grammar built for the request (a schema not seen before), with the kept grammar, and without one. Medians of ${rounds} alternating rounds. These models have a 100-token vocabulary (printable ASCII and the chat markers): the grammar checks candidate tokens, so with a 128K vocabulary the per-token cost is larger than here.`,
        columns: ['preset', 'decode tokens/s free', 'decode tokens/s held', 'ratio held/free', 'TTFT free (ms)', 'TTFT kept grammar (ms)', 'TTFT new grammar (ms)'],
        rows,
      }],
    };
  },
};
