/**
 * The guard on the real engine: a grammar of one character the tiny model has no token for
 * leaves llama.cpp's grammar sampler nothing to accept. Unguarded, that sample's error is an
 * unhandled rejection (the process ends) and the evaluation never settles.
 */
import { resolve } from 'node:path';
import { ensureCachedModel } from '@bamba/model-gen';
import { getLlama, LlamaGrammar, LlamaGrammarEvaluationState, type Llama, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardOutputReorder } from './reorder-guard.js';
import { guardSamplingFailures, SAMPLE_FAILED_MESSAGE, type SamplingFailures } from './sampling-failure-guard.js';

let llama: Llama;
let model: LlamaModel;
let context: LlamaContext;
let failures: SamplingFailures;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  llama = await getLlama({ gpu: false, build: 'never' });
  model = await llama.loadModel({ modelPath: ensureCachedModel(resolve('.cache'), 'tiny', 42) });
  context = await model.createContext({ sequences: 2, contextSize: 512, threads: 1 });
  guardOutputReorder(context); // as the engine installs them
  failures = guardSamplingFailures(context);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await context?.dispose();
  await model?.dispose();
});

/**
 * Up to `count` sampled tokens of one sequence, or the error its evaluation threw; `withMetadata`:
 * as the engine evaluates (the sample's result is then a triple with the token's confidence).
 */
async function sample(sequenceIndex: number, count: number, grammar?: LlamaGrammar, withMetadata = false): Promise<{ tokens: Token[]; error?: Error }> {
  const sequence = context.getSequence();
  const tokens: Token[] = [];
  try {
    const grammarEvaluationState = grammar ? new LlamaGrammarEvaluationState({ model, grammar }) : undefined;
    const prompt = model.tokenize(`prompt ${sequenceIndex}`);
    const options = { temperature: 0.8, seed: 7, ...(grammarEvaluationState ? { grammarEvaluationState } : {}) };
    const iterator = withMetadata
      ? (async function* () { for await (const step of sequence.evaluateWithMetadata(prompt, { confidence: true, probabilities: true }, options)) yield step.token; })()
      : sequence.evaluate(prompt, options);
    for await (const token of iterator) {
      tokens.push(token);
      if (tokens.length === count) break;
    }
    return { tokens };
  } catch (error) {
    return { tokens, error: error as Error };
  } finally {
    sequence.dispose();
  }
}

describe('guardSamplingFailures', () => {
  it('fails only the evaluation whose sample failed, and names llama.cpp’s reason', async () => {
    const deadEnd = new LlamaGrammar(llama, { grammar: 'root ::= "é"' });
    const [failed, other] = await Promise.all([sample(0, 16, deadEnd), sample(1, 16)]);
    expect(failed.error?.message).toBe(SAMPLE_FAILED_MESSAGE);
    expect(failed.tokens).toEqual([]);
    expect(failures.take()).toMatch(/grammar/);
    expect(failures.take()).toBeUndefined(); // read once
    // The slot sampling beside it in the same batches went on.
    expect(other.error).toBeUndefined();
    expect(other.tokens).toHaveLength(16);
    // Nothing escaped to the process, and the context serves on.
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    expect((await sample(0, 8)).tokens).toHaveLength(8);
  });

  it('does the same where the sample asked for probabilities (the engine’s way)', async () => {
    const failed = await sample(0, 16, new LlamaGrammar(llama, { grammar: 'root ::= "é"' }), true);
    expect(failed.error?.message).toBe(SAMPLE_FAILED_MESSAGE);
    expect(failures.take()).toMatch(/grammar/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    expect((await sample(1, 8, undefined, true)).tokens).toHaveLength(8);
  });
});
