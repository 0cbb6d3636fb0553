/**
 * The Bamba announcement's experiment on one GPU: 1K tokens in, 2K–16K out, batch 1–32, for a
 * bamba-9b-shape model against a Llama-3.1-8B-shaped transformer (both random weights, F16):
 * decode tokens/s, the hybrid/transformer ratio, and decode memory bandwidth against the HBM
 * peak. Run by bench/gpu/host.sh; `--dry-run` uses tiny shapes on the CPU to prove the script
 * works before a GPU minute is spent. Decode rates are timed while every sequence of the batch
 * decodes (decode-together.ts).
 *
 * Bandwidth model (a lower bound): each decode step reads every weight once (the embedding
 * table excepted) plus, per sequence, its recurrent state (read and written) or its K/V cache
 * up to the current length.
 */
import { statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLlamaEngine, type EngineDevice } from '@bamba/gpu-node';
import { estimateStateBytes, MODEL_PRESETS, TRANSFORMER_PRESETS, transformerKvBytes, transformerKvShape } from '@bamba/model-gen';
import { round } from '../measure.js';
import { benchPrompt, decodeTogether } from './decode-together.js';

const HBM_PEAK_BYTES_PER_SECOND = 4.8e12; // H200, vendor datasheet

interface Contender {
  name: string;
  modelPath: string;
  embeddingBytes: number;
  /** Per-sequence bytes a decode step touches at history length `tokens`. */
  sequenceBytes(tokens: number): number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    'dry-run': { type: 'boolean' },
    hybrid: { type: 'string' },
    transformer: { type: 'string' },
    batches: { type: 'string' },
    outputs: { type: 'string' },
    'prompt-tokens': { type: 'string' },
    out: { type: 'string' },
  } });
  const dryRun = values['dry-run'] ?? false;
  if (!values.hybrid || !values.transformer) throw new Error('--hybrid and --transformer name the two GGUF files');
  const device: EngineDevice = dryRun ? 'cpu' : 'cuda';
  const batches = (values.batches ?? (dryRun ? '1,2' : '1,8,32')).split(',').map(Number);
  const outputs = (values.outputs ?? (dryRun ? '16,32' : '4096,8192,16384')).split(',').map(Number);
  const promptTokens = Number(values['prompt-tokens'] ?? (dryRun ? 64 : 1024));
  const hybridShape = MODEL_PRESETS[dryRun ? 'tiny' : 'bamba-9b-shape'];
  const transformerShape = TRANSFORMER_PRESETS[dryRun ? 'llama-tiny-shape' : 'llama-3.1-8b-shape'];
  const vocab = (shape: { paddedVocabSize: number }) => Math.max(shape.paddedVocabSize, 100);
  const contenders: Contender[] = [
    {
      name: hybridShape.preset,
      modelPath: values.hybrid,
      embeddingBytes: hybridShape.embeddingLength * vocab(hybridShape) * 2,
      sequenceBytes: (tokens) => { const state = estimateStateBytes(hybridShape, tokens); return 2 * state.fixedBytes + state.perTokenBytes * tokens; },
    },
    {
      name: transformerShape.preset,
      modelPath: values.transformer,
      embeddingBytes: transformerShape.embeddingLength * vocab(transformerShape) * 2,
      sequenceBytes: (tokens) => transformerKvBytes(transformerKvShape(transformerShape), tokens),
    },
  ];
  const rows: Array<{ model: string; batch: number; output: number; tokensPerSecond: number; bandwidthTBs: number; hbmShare: number }> = [];
  for (const contender of contenders) {
    const weightBytes = statSync(contender.modelPath).size - contender.embeddingBytes;
    for (const output of outputs) {
      const engine = await createLlamaEngine({ modelPath: contender.modelPath, device, slots: Math.max(...batches), contextSize: promptTokens + output + 8, isolatePrompts: false });
      try {
        for (const batch of batches) {
          process.stderr.write(`${contender.name}: batch ${batch}, ${promptTokens} in, ${output} out\n`);
          const slots = Array.from({ length: batch }, () => engine.acquireSlot()!);
          const result = await decodeTogether(engine, slots, slots.map((_, index) => benchPrompt(engine, promptTokens, index)), output);
          for (const slot of slots) await engine.releaseSlot(slot);
          const bytesPerStep = weightBytes + batch * contender.sequenceBytes(promptTokens + output / 2);
          rows.push({
            model: contender.name, batch, output, tokensPerSecond: round(result.tokensPerSecond, 1),
            bandwidthTBs: round((result.stepsPerSecond * bytesPerStep) / 1e12, 3), hbmShare: round((result.stepsPerSecond * bytesPerStep) / HBM_PEAK_BYTES_PER_SECOND, 3),
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
      lines.push(`| ${output} | ${batch} | ${hybrid.tokensPerSecond} | ${transformer.tokensPerSecond} | ${round(hybrid.tokensPerSecond / transformer.tokensPerSecond, 2)} | ${hybrid.hbmShare} | ${transformer.hbmShare} |`);
    }
  }
  const report = `${dryRun ? 'DRY RUN (CPU, tiny shapes): numbers mean nothing, the script works.\n\n' : ''}${lines.join('\n')}\n`;
  process.stdout.write(report);
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify({ dryRun, device, promptTokens, rows }, null, 2)}\n`);
    writeFileSync(values.out.replace(/\.json$/, '.md'), report);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`gpu-throughput: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  // Exit now: a failure part-way can leave handles open, and host.sh's next step is waiting.
  process.exit(1);
});
