/**
 * The Bamba announcement's experiment on one GPU: 1K tokens in, 2K–16K out, batch 1–32, for a
 * bamba-9b-shape model against a Llama-3.1-8B-shaped transformer (both random weights, F16):
 * decode tokens/s, the hybrid/transformer ratio, and decode memory bandwidth against the HBM
 * peak. Run by bench/gpu/run.sh; `--dry-run` uses tiny shapes on the CPU to prove the script
 * works before a GPU minute is spent.
 *
 * Bandwidth model (a lower bound): each decode step reads every weight once (the embedding
 * table excepted) plus, per sequence, its recurrent state (read and written) or its K/V cache
 * up to the current length.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLlamaEngine, GREEDY, type EngineDevice } from '@bamba/gpu-node';
import { ensureCachedModel, estimateStateBytes, MODEL_PRESETS, planTransformer, TRANSFORMER_PRESETS, transformerKvBytes, writeGguf } from '@bamba/model-gen';
import { median, round } from './measure.js';

const HBM_PEAK_BYTES_PER_SECOND = 4.8e12; // H200, vendor datasheet

interface Contender {
  name: string;
  modelPath: string;
  embeddingBytes: number;
  /** Per-sequence bytes a decode step touches at history length `tokens`. */
  sequenceBytes(tokens: number): number;
}

function ensureTransformer(cacheDir: string, preset: keyof typeof TRANSFORMER_PRESETS): string {
  const path = join(cacheDir, 'models', `${preset}-seed1.gguf`);
  try {
    statSync(path);
  } catch {
    mkdirSync(join(cacheDir, 'models'), { recursive: true });
    process.stderr.write(`writing ${preset} (random weights)…\n`);
    writeGguf(path, planTransformer(TRANSFORMER_PRESETS[preset], 1).document);
  }
  return path;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    'dry-run': { type: 'boolean' },
    batches: { type: 'string' },
    outputs: { type: 'string' },
    'prompt-tokens': { type: 'string' },
    out: { type: 'string' },
  } });
  const dryRun = values['dry-run'] ?? false;
  const device: EngineDevice = dryRun ? 'cpu' : 'cuda';
  const batches = (values.batches ?? (dryRun ? '1,2' : '1,2,4,8,16,32')).split(',').map(Number);
  const outputs = (values.outputs ?? (dryRun ? '16,32' : '2048,4096,8192,16384')).split(',').map(Number);
  const promptTokens = Number(values['prompt-tokens'] ?? (dryRun ? 64 : 1024));
  const cacheDir = resolve('.cache');
  const hybridPreset = dryRun ? 'tiny' : 'bamba-9b-shape';
  const transformerPreset = dryRun ? 'llama-tiny-shape' : 'llama-3.1-8b-shape';
  const hybridShape = MODEL_PRESETS[hybridPreset];
  const transformerShape = TRANSFORMER_PRESETS[transformerPreset];
  const vocab = (shape: { paddedVocabSize: number }) => Math.max(shape.paddedVocabSize, 100);
  const contenders: Contender[] = [
    {
      name: hybridPreset,
      modelPath: ensureCachedModel(cacheDir, hybridPreset, 1, (fraction) => process.stderr.write(`\rwriting ${hybridPreset}: ${(fraction * 100).toFixed(0)}%`)),
      embeddingBytes: hybridShape.embeddingLength * vocab(hybridShape) * 2,
      sequenceBytes: (tokens) => { const state = estimateStateBytes(hybridShape, tokens); return 2 * state.fixedBytes + state.perTokenBytes * tokens; },
    },
    {
      name: transformerPreset,
      modelPath: ensureTransformer(cacheDir, transformerPreset),
      embeddingBytes: transformerShape.embeddingLength * vocab(transformerShape) * 2,
      sequenceBytes: (tokens) => transformerKvBytes({ layers: transformerShape.blockCount, kvHeads: transformerShape.headCountKv, headDim: transformerShape.embeddingLength / transformerShape.headCount }, tokens),
    },
  ];
  process.stderr.write('\n');
  const rows: Array<Record<string, number | string>> = [];
  for (const contender of contenders) {
    const weightBytes = statSync(contender.modelPath).size - contender.embeddingBytes;
    for (const output of outputs) {
      const engine = await createLlamaEngine({ modelPath: contender.modelPath, device, slots: Math.max(...batches), contextSize: promptTokens + output + 8, flashAttention: !dryRun });
      try {
        for (const batch of batches) {
          process.stderr.write(`${contender.name}: batch ${batch}, ${promptTokens} in, ${output} out\n`);
          const decodeRates: number[] = [];
          const started = performance.now();
          const firstTokenAt: number[] = [];
          const counts = await Promise.all(Array.from({ length: batch }, async (_, index) => {
            const slot = engine.acquireSlot()!;
            const prompt = engine.tokenize('The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(promptTokens / 45) + 1).slice(index, index + promptTokens));
            let tokens = 0;
            for await (const _token of engine.generate(slot, prompt, { ...GREEDY, maxTokens: output })) {
              if (tokens === 0) firstTokenAt.push(performance.now());
              tokens++;
            }
            await engine.releaseSlot(slot);
            return tokens;
          }));
          const decodeSeconds = (performance.now() - median(firstTokenAt)) / 1000;
          const generated = counts.reduce((sum, count) => sum + count, 0);
          decodeRates.push(generated / decodeSeconds);
          const stepsPerSecond = decodeRates[0]! / batch;
          const bytesPerStep = weightBytes + batch * contender.sequenceBytes(promptTokens + output / 2);
          rows.push({
            model: contender.name, batch, output, tokensPerSecond: round(decodeRates[0]!, 1),
            bandwidthTBs: round((stepsPerSecond * bytesPerStep) / 1e12, 3), hbmShare: round((stepsPerSecond * bytesPerStep) / HBM_PEAK_BYTES_PER_SECOND, 3),
            wallSeconds: round((performance.now() - started) / 1000, 1),
          });
        }
      } finally {
        await engine.close();
      }
    }
  }
  const lines = ['| output | batch | hybrid tokens/s | transformer tokens/s | hybrid/transformer | hybrid HBM share | transformer HBM share |', '|---|---|---|---|---|---|---|'];
  for (const output of outputs) {
    for (const batch of batches) {
      const hybrid = rows.find((row) => row.model === contenders[0]!.name && row.batch === batch && row.output === output)!;
      const transformer = rows.find((row) => row.model === contenders[1]!.name && row.batch === batch && row.output === output)!;
      lines.push(`| ${output} | ${batch} | ${hybrid.tokensPerSecond} | ${transformer.tokensPerSecond} | ${round(Number(hybrid.tokensPerSecond) / Number(transformer.tokensPerSecond), 2)} | ${hybrid.hbmShare} | ${transformer.hbmShare} |`);
    }
  }
  const report = `${dryRun ? 'DRY RUN (CPU, tiny shapes): numbers mean nothing, the script works.\n\n' : ''}${lines.join('\n')}\n`;
  process.stdout.write(report);
  if (values.out) {
    writeFileSync(values.out, JSON.stringify({ dryRun, device, promptTokens, rows }, null, 2));
    writeFileSync(values.out.replace(/\.json$/, '.md'), report);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`gpu-throughput: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
