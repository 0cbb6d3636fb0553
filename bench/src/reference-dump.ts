/**
 * llama.cpp's side of the reference check (bench/gpu/reference): loads a GGUF with node-llama-cpp
 * on a chosen device and writes JSON with, for three fixed prompts, the prompt's token ids, the
 * next-token distribution, and a greedy continuation with the distribution at every step.
 * bench/gpu/reference/check.py compares that with Hugging Face's BambaForCausalLM (or, without
 * torch, with its numpy forward of the same math).
 *
 * node-llama-cpp 3.21.1 has no call that returns raw logits. Its `probabilities` are the softmax
 * of llama.cpp's logits over the whole vocabulary, computed in float32 by the addon after the
 * sampler chain; with temperature 0 and no bias or penalties that chain is only the greedy
 * sampler, which leaves the logits untouched. So the dump holds log(p), that is log-softmax of
 * the logits (to float32 rounding, about 1e-7), and the checker compares log-softmax on both sides.
 *
 *   node bench/dist/reference-dump.js --preset tiny --device cpu --out .cache/reference/tiny-cpu.json
 *   node bench/dist/reference-dump.js --model path/to/model.gguf --device cuda --out dump.json
 *
 * Every flag has an environment twin: REFERENCE_PRESET, REFERENCE_MODEL, REFERENCE_DEVICE,
 * REFERENCE_STEPS, REFERENCE_FLASH_ATTENTION (1/0), REFERENCE_KV_CACHE (f32/f16), REFERENCE_OUT.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLlama, NODE_LLAMA_CPP_VERSION } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, isModelPresetName, SPECIAL_TOKENS } from '@bamba/model-gen';
import type { ControlledEvaluateInputItem, Token } from 'node-llama-cpp';

/** The dump's `format`; check.py refuses anything else. */
const REFERENCE_DUMP_FORMAT = 'bamba-reference-dump/1';
const DEFAULT_STEPS = 32;
const CONTEXT_SIZE = 1024;

/** The three prompts: plain text, a chat turn with role markers, and one longer than HF's 256-token SSD chunk. */
const PROMPTS: ReadonlyArray<{ name: string; text: string; special: boolean }> = [
  { name: 'plain', text: 'The quick brown fox jumps over the lazy dog.', special: false },
  {
    name: 'chat',
    text: `${SPECIAL_TOKENS.startOfRole}user${SPECIAL_TOKENS.endOfRole}What does a state space model remember?${SPECIAL_TOKENS.endOfText}${SPECIAL_TOKENS.startOfRole}assistant${SPECIAL_TOKENS.endOfRole}`,
    special: true,
  },
  {
    name: 'long',
    text:
      'def fibonacci(n):\n\ta, b = 0, 1\n\tfor _ in range(n):\n\t\ta, b = b, a + b\n\treturn a\n\n' +
      Array.from({ length: 40 }, (_, index) => `${index * 7 % 13}`).join(', ') +
      '. Mamba layers keep a fixed-size state; attention layers keep every key and value. ' +
      'A hybrid of both remembers a long prompt in little memory, and { "keys": [1, 2, 3] } still parses.',
    special: false,
  },
];

type ReferenceDevice = 'cpu' | 'cuda' | 'auto';

/** What to dump; read once from flags and their environment twins. */
export interface ReferenceDumpOptions {
  /** GGUF to load. */
  modelPath: string;
  /** Preset name when the model came from `--preset`, for the record. */
  preset: string | null;
  device: ReferenceDevice;
  /** Greedy steps per prompt (default 32); step 0 is the next token after the prompt. */
  steps: number;
  /** llama.cpp flash attention (default off, as the gpu-node runs). */
  flashAttention: boolean;
  /**
   * K/V cache element type (default F32). F32 isolates the model's math: the reference computes
   * attention in float32. F16 is what the gpu-node serves with (node-llama-cpp's default); it
   * rounds keys, values and (on the CPU) queries to half precision, about 5e-3 in log-probabilities.
   */
  kvCache: 'F32' | 'F16';
  /** Output JSON path. */
  outPath: string;
}

/** One prompt's record. `stepLogProbs[i]` is the distribution `greedyTokens[i]` was chosen from. */
export interface PromptDump {
  name: string;
  text: string;
  tokens: number[];
  greedyTokens: number[];
  /** log(p) over the whole vocabulary per step; null where p underflowed to 0 in float32. */
  stepLogProbs: Array<Array<number | null>>;
}

/** The file check.py reads. */
export interface ReferenceDump {
  format: typeof REFERENCE_DUMP_FORMAT;
  /** What the numbers are: always log-softmax of the logits (see the header). */
  values: 'log-softmax';
  model: { path: string; preset: string | null; name: string | null; fileBytes: number };
  engine: { nodeLlamaCpp: string; llamaCpp: string; device: 'cpu' | 'cuda'; gpuDevices: string[]; flashAttention: boolean; kvCache: 'F32' | 'F16' };
  vocabSize: number;
  prompts: PromptDump[];
}

function parseReferenceDumpOptions(argv: readonly string[], env: NodeJS.ProcessEnv): ReferenceDumpOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      preset: { type: 'string' },
      model: { type: 'string' },
      device: { type: 'string' },
      steps: { type: 'string' },
      'flash-attention': { type: 'boolean' },
      'kv-cache': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const modelFlag = values.model ?? env.REFERENCE_MODEL;
  const preset = values.preset ?? env.REFERENCE_PRESET ?? (modelFlag ? null : 'tiny');
  if (preset !== null && !isModelPresetName(preset)) throw new RangeError(`unknown preset ${preset}`);
  const device = values.device ?? env.REFERENCE_DEVICE ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda' && device !== 'auto') throw new RangeError(`--device must be cpu, cuda or auto, got ${device}`);
  const steps = Number(values.steps ?? env.REFERENCE_STEPS ?? DEFAULT_STEPS);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`--steps must be a positive integer, got ${steps}`);
  const kvCache = (values['kv-cache'] ?? env.REFERENCE_KV_CACHE ?? 'F32').toUpperCase();
  if (kvCache !== 'F32' && kvCache !== 'F16') throw new RangeError(`--kv-cache must be f32 or f16, got ${kvCache}`);
  const outPath = values.out ?? env.REFERENCE_OUT;
  if (!outPath) throw new RangeError('--out is required');
  // --model wins; a preset is generated into .cache/models when missing, as `bamba model --cache` does.
  const modelPath = modelFlag ? resolve(modelFlag) : ensureCachedModel(resolve('.cache'), preset ?? 'tiny', DEFAULT_MODEL_SEED);
  return {
    modelPath,
    preset,
    device,
    steps,
    flashAttention: values['flash-attention'] ?? env.REFERENCE_FLASH_ATTENTION === '1',
    kvCache,
    outPath: resolve(outPath),
  };
}

/** log(p) for every token id from node-llama-cpp's sorted probability map. */
function logProbsOf(probabilities: Map<Token, number>, vocabSize: number): Array<number | null> {
  const values: Array<number | null> = new Array<number | null>(vocabSize).fill(null);
  for (const [token, probability] of probabilities) values[token] = probability > 0 ? Math.log(probability) : null;
  return values;
}

async function dumpReference(options: ReferenceDumpOptions): Promise<ReferenceDump> {
  const llama = await loadLlama(options.device);
  const onGpu = llama.gpu !== false;
  const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: onGpu ? 'max' : 0 });
  try {
    // Explicit threads, as the gpu-node sets them: node-llama-cpp's default oversubscribes a
    // small busy machine (about a second per token on the tiny model with 2 cores).
    const context = await model.createContext({ contextSize: CONTEXT_SIZE, sequences: 1, flashAttention: options.flashAttention, threads: Math.max(1, availableParallelism() - 1), experimentalKvCacheKeyType: options.kvCache, experimentalKvCacheValueType: options.kvCache });
    try {
      // No checkpoints: nothing here rewinds the recurrent state.
      const sequence = context.getSequence({ checkpoints: { max: 0, interval: false } });
      const vocabSize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
      if (vocabSize === 0) throw new Error(`${options.modelPath} has no tokenizer.ggml.tokens`);
      const next = { generateNext: { token: true, probabilities: true, options: { temperature: 0 } } } as const;
      const prompts: PromptDump[] = [];
      for (const prompt of PROMPTS) {
        const tokens = model.tokenize(prompt.text, prompt.special);
        if (tokens.length + options.steps > CONTEXT_SIZE) throw new RangeError(`prompt ${prompt.name} plus ${options.steps} steps exceeds the ${CONTEXT_SIZE}-token context`);
        await sequence.clearHistory();
        const greedyTokens: number[] = [];
        const stepLogProbs: Array<Array<number | null>> = [];
        let input: ControlledEvaluateInputItem[] = [...tokens.slice(0, -1), [tokens.at(-1)!, next]];
        for (let step = 0; step < options.steps; step++) {
          const output = (await sequence.controlledEvaluate(input))[input.length - 1];
          const token = output?.next.token;
          const probabilities = output?.next.probabilities;
          if (token == null || !probabilities) throw new Error(`no next token for prompt ${prompt.name} at step ${step}: a bug in how the dump asks node-llama-cpp`);
          greedyTokens.push(token);
          stepLogProbs.push(logProbsOf(probabilities, vocabSize));
          input = [[token, next]];
        }
        prompts.push({ name: prompt.name, text: prompt.text, tokens: [...tokens], greedyTokens, stepLogProbs });
      }
      return {
        format: REFERENCE_DUMP_FORMAT,
        values: 'log-softmax',
        model: { path: options.modelPath, preset: options.preset, name: model.fileInfo.metadata.general?.name ?? null, fileBytes: statSync(options.modelPath).size },
        engine: {
          nodeLlamaCpp: NODE_LLAMA_CPP_VERSION,
          llamaCpp: llama.llamaCppRelease.release,
          device: onGpu ? 'cuda' : 'cpu',
          gpuDevices: onGpu ? await llama.getGpuDeviceNames() : [],
          flashAttention: options.flashAttention,
          kvCache: options.kvCache,
        },
        vocabSize,
        prompts,
      };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  const options = parseReferenceDumpOptions(process.argv.slice(2), process.env);
  const dump = await dumpReference(options);
  mkdirSync(dirname(options.outPath), { recursive: true });
  writeFileSync(options.outPath, JSON.stringify(dump));
  const summary = dump.prompts.map((prompt) => `${prompt.name}: ${prompt.tokens.length} tokens in, ${prompt.greedyTokens.length} out`).join('; ');
  process.stdout.write(`reference-dump: ${dump.engine.device}, ${summary}; wrote ${options.outPath}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`reference-dump: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
