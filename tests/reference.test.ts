/**
 * Served output against an independent reference: node-llama-cpp's own completion API
 * (`LlamaCompletion`, its own generation loop, sampling and detokenization) on the same model
 * and settings, not our engine code. A bug in our engine's loop, text assembly or stop handling
 * shows up here even where tests that compare with our engine (`directGreedy`) cannot see it.
 */
import { getLlama, LlamaCompletion, LlamaLogLevel, TokenBias, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_NODE_ENV, MODEL_ID, postJson, startTestStack, TINY_MODEL_PATH, type TestStack } from './support/stack.js';

let stack: TestStack;
let model: LlamaModel;
let context: LlamaContext;

beforeAll(async () => {
  stack = await startTestStack();
  const llama = await getLlama({ build: 'never', gpu: false, logLevel: LlamaLogLevel.warn, progressLogs: false });
  model = await llama.loadModel({ modelPath: TINY_MODEL_PATH, gpuLayers: 0 });
  // The settings the gpu-nodes run with: slots = sequences, context per slot, one thread, no flash attention.
  context = await model.createContext({ contextSize: Number(DEFAULT_NODE_ENV.BAMBA_CONTEXT_SIZE), sequences: Number(DEFAULT_NODE_ENV.BAMBA_SLOTS), threads: 1, flashAttention: false });
});
afterAll(async () => {
  await stack?.stop();
  await context?.dispose();
  await model?.dispose();
});

/** Greedy text from node-llama-cpp's completion API; role markers never generated, as in a chat server. */
async function reference(prompt: string, maxTokens: number): Promise<string> {
  const sequence = context.getSequence();
  const completion = new LlamaCompletion({ contextSequence: sequence });
  try {
    const bias = new TokenBias(model.tokenizer);
    for (let token = 0; token < model.fileInfo.metadata.tokenizer!.ggml!.tokens!.length; token++) {
      if (model.isSpecialToken(token as Token) && !model.isEogToken(token as Token)) bias.set(token as Token, 'never');
    }
    return await completion.generateCompletion(model.tokenize(prompt, false), { maxTokens, temperature: 0, tokenBias: bias });
  } finally {
    completion.dispose({ disposeSequence: true });
  }
}

describe('served output against node-llama-cpp’s own completion API', () => {
  for (const prompt of ['Once upon a time', 'The state of a hybrid model is', 'a']) {
    it(`/v1/completions for "${prompt}"`, async () => {
      const served = await postJson(`${stack.url}/v1/completions`, { model: MODEL_ID, prompt, max_tokens: 48, temperature: 0 });
      expect(served.status).toBe(200);
      expect(served.json.choices[0].text).toBe(await reference(prompt, 48));
    });
  }

  it('streamed /v1/completions gives the same text', async () => {
    const prompt = 'Streams and state';
    const response = await fetch(`${stack.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID, prompt, max_tokens: 40, temperature: 0, stream: true }) });
    const text = (await response.text()).split('\n').filter((line) => line.startsWith('data: {')).map((line) => JSON.parse(line.slice(6)).choices[0]?.text ?? '').join('');
    expect(text).toBe(await reference(prompt, 40));
  });
});
