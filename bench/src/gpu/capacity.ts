/**
 * Capacity on one GPU: at C tokens of context per sequence, the most sequences that fit beside
 * the weights for bamba-9b-shape and llama-3.1-8b-shape, and the aggregate decode tokens/s of
 * that many sequences decoding together. Run by bench/gpu/host.sh; `--dry-run` runs the same
 * code on the CPU with tiny shapes.
 *
 * What fits: a first guess from the free GPU memory, the weights and each model's per-sequence
 * bytes (a hybrid: fixed Mamba state plus K/V of its few attention layers; a transformer: K/V
 * of every layer), then llama.cpp's own allocation decides (10% fewer until a context is made
 * and decodes). llama.cpp holds at most 256 sequences in one context; a model limited by that
 * and not by memory is reported as such.
 *
 * How the sequences are filled: one sequence holds C tokens, the others a short prompt. llama.cpp
 * (KV cache not unified, flash attention off) computes every sequence's attention over the
 * longest sequence's cell range, masked, and keeps each Mamba state at its fixed size, so a
 * decode step costs what it would with every sequence at C. Prefilling all of them would take
 * longer than a GPU lease (256 × 32K tokens). `--validate` checks that claim: at a few sequences,
 * the rate with one long sequence ÷ the rate with all of them long.
 */
import { execFileSync } from 'node:child_process';
import { freemem } from 'node:os';
import { statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLlamaEngine, type Engine, type EngineDevice, type Slot } from '@bamba/gpu-node';
import { estimateStateBytes, MODEL_PRESETS, TRANSFORMER_PRESETS, transformerKvBytes, transformerKvShape } from '@bamba/model-gen';
import { round } from '../measure.js';
import { benchPrompt, decodeTogether } from './decode-together.js';

/** llama.cpp's LLAMA_MAX_SEQ: sequences one context can hold. */
const MAX_SEQUENCES_PER_CONTEXT = 256;
const GiB = 2 ** 30;
const SHORT_PROMPT_TOKENS = 16;
const FIT_ATTEMPTS = 6;

interface Contender { name: string; modelPath: string; perSequenceBytes(context: number): number }

interface FillCheck { model: string; context: number; sequences: number; allLongTokensPerSecond: number; oneLongTokensPerSecond: number; ratio: number }

interface CapacityRow {
  model: string;
  context: number;
  perSequenceMiB: number;
  memoryLimit: number;
  sequences: number;
  limitedBy: 'memory' | 'llama.cpp (256 per context)' | 'dry run';
  tokensPerSecond: number;
  stepsPerSecond: number;
  attempts: number;
}

function log(line: string): void {
  process.stderr.write(`capacity: ${line}\n`);
}

/** Free bytes on the GPU (nvidia-smi, else torch), or the machine's free RAM on the CPU. */
function freeDeviceBytes(device: EngineDevice): number {
  if (device !== 'cuda') return freemem();
  try {
    const mib = Number(execFileSync('nvidia-smi', ['--query-gpu=memory.free', '--format=csv,noheader,nounits'], { encoding: 'utf8' }).split('\n')[0]);
    if (Number.isFinite(mib) && mib > 0) return mib * 2 ** 20;
  } catch {
    /* no nvidia-smi on PATH: ask torch */
  }
  const bytes = Number(execFileSync('python3', ['-c', 'import torch; print(torch.cuda.mem_get_info()[0])'], { encoding: 'utf8' }).trim());
  if (!Number.isFinite(bytes) || bytes <= 0) throw new Error('neither nvidia-smi nor torch gave the free GPU memory');
  return bytes;
}

async function fillAndDecode(engine: Engine, sequences: number, context: number, answerTokens: number, allLong: boolean) {
  const slots: Slot[] = Array.from({ length: sequences }, () => engine.acquireSlot()!);
  try {
    const longTokens = context - answerTokens - 2;
    const prompts = slots.map((_, index) => benchPrompt(engine, index === 0 || allLong ? longTokens : SHORT_PROMPT_TOKENS, index));
    return await decodeTogether(engine, slots, prompts, answerTokens);
  } finally {
    for (const slot of slots) await engine.releaseSlot(slot);
  }
}

async function measureCapacity(contender: Contender, context: number, options: { device: EngineDevice; reserveBytes: number; cap: number; answerTokens: number }): Promise<CapacityRow> {
  const free = freeDeviceBytes(options.device);
  const weights = statSync(contender.modelPath).size;
  const perSequence = contender.perSequenceBytes(context);
  const memoryLimit = Math.max(1, Math.floor((free - weights - options.reserveBytes) / perSequence));
  let sequences = Math.min(memoryLimit, MAX_SEQUENCES_PER_CONTEXT, options.cap);
  log(`${contender.name} at ${context}: ${round(free / GiB, 1)} GiB free, weights ${round(weights / GiB, 1)} GiB, ${round(perSequence / 2 ** 20, 1)} MiB per sequence → try ${sequences}`);
  for (let attempt = 1; attempt <= FIT_ATTEMPTS; attempt++) {
    let engine: Engine | undefined;
    try {
      engine = await createLlamaEngine({ modelPath: contender.modelPath, device: options.device, slots: sequences, contextSize: context, isolatePrompts: false, memorySafetyChecks: false });
      const result = await fillAndDecode(engine, sequences, context, options.answerTokens, false);
      const limitedBy = options.cap < Math.min(memoryLimit, MAX_SEQUENCES_PER_CONTEXT) ? 'dry run' : sequences === MAX_SEQUENCES_PER_CONTEXT && memoryLimit > MAX_SEQUENCES_PER_CONTEXT ? 'llama.cpp (256 per context)' : 'memory';
      log(`${contender.name} at ${context}: ${sequences} sequences decode ${round(result.tokensPerSecond, 1)} tokens/s${result.endedEarly ? ` (${result.endedEarly} ended at once)` : ''}`);
      return { model: contender.name, context, perSequenceMiB: round(perSequence / 2 ** 20, 1), memoryLimit, sequences, limitedBy, tokensPerSecond: round(result.tokensPerSecond, 1), stepsPerSecond: round(result.stepsPerSecond, 2), attempts: attempt };
    } catch (error) {
      log(`${contender.name} at ${context}: ${sequences} sequences failed (${(error as Error).message.split('\n')[0]})`);
      if (sequences === 1) throw error;
      sequences = Math.max(1, Math.floor(sequences * 0.9));
    } finally {
      await engine?.close();
    }
  }
  throw new Error(`${contender.name} at ${context}: no concurrency fitted in ${FIT_ATTEMPTS} attempts`);
}

/** The fill shortcut's check: rate with one long sequence ÷ rate with all sequences long. */
async function validateFill(contender: Contender, context: number, sequences: number, device: EngineDevice, answerTokens: number): Promise<FillCheck> {
  const engine = await createLlamaEngine({ modelPath: contender.modelPath, device, slots: sequences, contextSize: context, isolatePrompts: false, memorySafetyChecks: false });
  try {
    const allLong = await fillAndDecode(engine, sequences, context, answerTokens, true);
    const oneLong = await fillAndDecode(engine, sequences, context, answerTokens, false);
    log(`fill check, ${contender.name} at ${context} × ${sequences}: all long ${round(allLong.tokensPerSecond, 1)} t/s, one long ${round(oneLong.tokensPerSecond, 1)} t/s`);
    return { model: contender.name, context, sequences, allLongTokensPerSecond: round(allLong.tokensPerSecond, 1), oneLongTokensPerSecond: round(oneLong.tokensPerSecond, 1), ratio: round(oneLong.tokensPerSecond / allLong.tokensPerSecond, 3) };
  } finally {
    await engine.close();
  }
}

function capacityMarkdown(rows: readonly CapacityRow[], validation: FillCheck | null): string {
  const contexts = [...new Set(rows.map((row) => row.context))];
  const lines = ['| context per sequence | model | per sequence (MiB) | fit by memory | sequences run | limited by | decode tokens/s | steps/s |', '|---|---|---|---|---|---|---|---|'];
  for (const row of rows) lines.push(`| ${row.context} | ${row.model} | ${row.perSequenceMiB} | ${row.memoryLimit} | ${row.sequences} | ${row.limitedBy} | ${row.tokensPerSecond} | ${row.stepsPerSecond} |`);
  lines.push('', '| context per sequence | hybrid ÷ transformer sequences | hybrid ÷ transformer decode tokens/s |', '|---|---|---|');
  for (const context of contexts) {
    // Rows come hybrid first, then the transformer, for each context.
    const [hybrid, transformer] = rows.filter((row) => row.context === context);
    if (hybrid && transformer) lines.push(`| ${context} | ${round(hybrid.sequences / transformer.sequences, 2)} | ${round(hybrid.tokensPerSecond / transformer.tokensPerSecond, 2)} |`);
  }
  if (validation) lines.push('', `Fill check (${validation.model}, ${validation.context} tokens × ${validation.sequences} sequences): every sequence long ${validation.allLongTokensPerSecond} tokens/s, one long ${validation.oneLongTokensPerSecond} tokens/s, ratio ${validation.ratio}.`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    'dry-run': { type: 'boolean' },
    hybrid: { type: 'string' },
    transformer: { type: 'string' },
    contexts: { type: 'string' },
    validate: { type: 'boolean' },
    out: { type: 'string' },
  } });
  const dryRun = values['dry-run'] ?? false;
  if (!values.hybrid || !values.transformer) throw new Error('--hybrid and --transformer name the two GGUF files');
  const device: EngineDevice = dryRun ? 'cpu' : 'cuda';
  const hybridShape = MODEL_PRESETS[dryRun ? 'tiny' : 'bamba-9b-shape'];
  const transformerShape = TRANSFORMER_PRESETS[dryRun ? 'llama-tiny-shape' : 'llama-3.1-8b-shape'];
  const contenders: Contender[] = [
    { name: hybridShape.preset, modelPath: values.hybrid, perSequenceBytes: (context) => estimateStateBytes(hybridShape, context).totalBytes },
    { name: transformerShape.preset, modelPath: values.transformer, perSequenceBytes: (context) => transformerKvBytes(transformerKvShape(transformerShape), context) },
  ];
  const contexts = (values.contexts ?? (dryRun ? '512,1024' : '8192,32768')).split(',').map(Number);
  const options = { device, reserveBytes: dryRun ? 0 : 8 * GiB, cap: dryRun ? 6 : MAX_SEQUENCES_PER_CONTEXT, answerTokens: dryRun ? 24 : 48 };
  const validation = values.validate ? await validateFill(contenders[1]!, contexts[0]!, dryRun ? 3 : 4, device, options.answerTokens) : null;
  const rows: CapacityRow[] = [];
  for (const context of contexts) for (const contender of contenders) rows.push(await measureCapacity(contender, context, options));
  const report = `${dryRun ? 'DRY RUN (CPU, tiny shapes, at most 6 sequences): the numbers mean nothing, the script works.\n\n' : ''}${capacityMarkdown(rows, validation)}`;
  process.stdout.write(report);
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify({ dryRun, device, rows, validation }, null, 2)}\n`);
    writeFileSync(values.out.replace(/\.json$/, '.md'), report);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`capacity: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  // Exit now: a failure part-way can leave handles open, and host.sh's next step is waiting.
  process.exit(1);
});
